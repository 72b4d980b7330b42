import { createChatServer, type ChatServer, type CreateChatServerOptions } from "../../src/server.js";

export interface RunningServer {
  server: ChatServer;
  url: string;
  close(): Promise<void>;
}

/** A real roomcast server in this process, on a free loopback port. */
export async function startServer(options: CreateChatServerOptions = {}): Promise<RunningServer> {
  const server = await createChatServer({ logLevel: "silent", unsubscribeDelay: 0, webRoot: false, ...options });
  const address = await server.listen(0, "127.0.0.1");
  return { server, url: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

/** Holds connections of chosen users at the door (both transports), until released. */
export class AdmissionGate {
  private readonly held = new Map<string, Promise<void>>();

  readonly admit = async (user: { name: string }): Promise<undefined> => {
    await this.held.get(user.name);
    return undefined;
  };

  /** Connections of `name` wait from now until the returned function is called. */
  hold(name: string): () => void {
    let release!: () => void;
    this.held.set(name, new Promise<void>((resolve) => (release = resolve)));
    return () => {
      this.held.delete(name);
      release();
    };
  }
}

/** Closes the connections of a user by name from the server's side; their clients reconnect. */
export function dropConnections(srv: Pick<RunningServer, "server">, name: string): number {
  const ids = srv.server.connections().filter((c) => c.user.name === name).map((c) => c.id);
  for (const id of ids) srv.server.gateway.reconnect(id);
  return ids.length;
}
