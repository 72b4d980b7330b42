/** Progress on the terminal: a status line rewritten in place on a TTY, plain lines otherwise (CI logs). */
const tty = process.stdout.isTTY === true;
let statusShown = false;
let lastPlain = 0;

export function log(line: string): void {
  if (statusShown) process.stdout.write("\r\x1b[K");
  statusShown = false;
  process.stdout.write(`${line}\n`);
}

export function status(line: string): void {
  if (tty) {
    process.stdout.write(`\r\x1b[K${line.slice(0, (process.stdout.columns ?? 120) - 1)}`);
    statusShown = true;
  } else if (Date.now() - lastPlain > 5000) {
    // Without a terminal, a line every few seconds is progress enough.
    lastPlain = Date.now();
    process.stdout.write(`  ${line}\n`);
  }
}

export const fmt = {
  int: (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-"),
  ms: (n: number): string => (!Number.isFinite(n) ? "-" : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toString()),
  num: (n: number | null | undefined, digits = 1): string => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits)),
  ratio: (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? "-" : `${n.toFixed(2)}x`),
};
