import type { Logger } from "pino";
import type { Session } from "../chat/session.js";
import { failure } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { CLIENT_EVENTS, type Ack, type ClientEventName, type ErrorBody } from "../protocol.js";

export type AnyAck = Ack<object>;
export type AckFn = (res: AnyAck) => void;

type Handler<E extends ClientEventName> = (
  session: Session,
  req: ReturnType<(typeof CLIENT_EVENTS)[E]["parse"]>,
  reply: AckFn,
) => void | Promise<void>;

const HANDLERS: { [E in ClientEventName]: Handler<E> } = {
  join: (session, req, reply) => session.join(req, reply),
  leave: async (session, req, reply) => reply(await session.leave(req)),
  message: async (session, req, reply) => reply(await session.send(req)),
  history: async (session, req, reply) => reply(await session.history(req)),
  // No ack is needed, but a client that passes one must get an answer, not a timeout.
  typing: (session, req, reply) => reply(session.typing(req) ?? { ok: true }),
};

export const isClientEvent = (event: unknown): event is ClientEventName => typeof event === "string" && Object.hasOwn(HANDLERS, event);

/**
 * A client event, whichever transport brought it: validate, call the domain, acknowledge.
 * Without an ack, an error goes out as an `error` event through `emitError`.
 */
export type ChatEventHandler = (session: Session, event: string, args: unknown[], ack: AckFn | undefined, emitError: (body: ErrorBody & { event: string }) => void) => void;

export function createChatEventHandler(deps: { logger: Logger; metrics: Metrics }): ChatEventHandler {
  const { logger, metrics } = deps;

  return function handle(session, event, args, ack, emitError) {
    const received = event === "message" ? performance.now() : 0;
    const reply = (res: AnyAck): void => {
      if (!res.ok) metrics.reject(res.error.code);
      else if (event === "message") {
        metrics.messages.inc();
        metrics.messageAck.observe((performance.now() - received) / 1000);
      }
      if (ack) ack(res);
      else if (!res.ok) emitError({ ...res.error, event });
    };
    if (!isClientEvent(event)) {
      reply(failure("bad_request", `unknown event ${JSON.stringify(String(event)).slice(0, 80)}`));
      return;
    }
    const parsed = CLIENT_EVENTS[event].safeParse(args[0]);
    if (!parsed.success || args.length > 1) {
      reply(failure("bad_request", describe(parsed.success ? undefined : parsed.error.issues)));
      return;
    }
    try {
      const done = (HANDLERS[event] as Handler<typeof event>)(session, parsed.data as never, reply);
      if (done) done.catch((err: unknown) => bug(err, reply));
    } catch (err) {
      bug(err, reply);
    }
  };

  function bug(err: unknown, reply: AckFn): void {
    logger.error({ err }, "handler failed");
    reply(failure("unavailable", "internal error"));
  }
}

function describe(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> | undefined): string {
  if (!issues) return "expected one payload object and an optional ack callback";
  const first = issues[0];
  if (!first) return "malformed payload";
  const where = first.path.length > 0 ? `${first.path.map(String).join(".")}: ` : "";
  return `${where}${first.message}`.slice(0, 200);
}
