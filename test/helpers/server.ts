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
