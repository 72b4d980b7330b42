export { createChatServer, type ChatServer, type CreateChatServerOptions } from "./server.js";
export { loadOptions, defaultOptions, ConfigError, type ChatOptions } from "./config.js";
export * from "./protocol.js";
export { ERROR_CATALOGUE } from "./errors.js";
