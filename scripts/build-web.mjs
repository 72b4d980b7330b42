// Bundles the web client (src/clients/web) into dist/web with esbuild, and copies its static
// files next to the bundle: one self-contained folder, no CDN, works offline.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

const SRC = "src/clients/web";
const OUT = "dist/web";
if (!existsSync(`${SRC}/main.ts`)) process.exit(0);
const { build } = await import("esbuild");

// protocol.ts's `z` namespace would bundle all of zod's locales: give it the slim one (see zod-slim.ts).
const slimZod = {
  name: "slim-zod",
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, (args) => (args.importer.endsWith(join("src", "protocol.ts")) ? { path: resolve(SRC, "zod-slim.ts") } : undefined));
  },
};

await build({
  entryPoints: [`${SRC}/main.ts`],
  bundle: true,
  outfile: `${OUT}/app.js`,
  format: "esm",
  target: "es2020",
  sourcemap: true,
  minify: true,
  logLevel: "warning",
  plugins: [slimZod],
});
mkdirSync(OUT, { recursive: true });
for (const file of ["index.html", "style.css", "favicon.svg"]) copyFileSync(`${SRC}/${file}`, `${OUT}/${file}`);
