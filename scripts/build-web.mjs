// Bundles the web client (src/clients/web) into dist/web with esbuild; no CDN, works offline.
import { existsSync } from "node:fs";
if (!existsSync("src/clients/web/main.ts")) process.exit(0);
const { build } = await import("esbuild");
await build({ entryPoints: ["src/clients/web/main.ts"], bundle: true, outfile: "dist/web/app.js", format: "esm", target: "es2020", sourcemap: true, minify: true, logLevel: "warning" });
