/**
 * The page bundles src/protocol.ts for its constants and types, and protocol.ts builds its zod
 * schemas from `z` at load. zod's `z` namespace drags every locale into a bundle (about 450 KB
 * of the page's 510 KB), so scripts/build-web.mjs points protocol.ts's "zod" at this file: the
 * same builders, imported by name so the bundler keeps only what they use. The schemas still
 * work in the page. If protocol.ts starts using another builder, add it here (the web tests fail
 * at once otherwise: the page would not start).
 */
import { number, object, string } from "zod";

export const z = { number, object, string };
