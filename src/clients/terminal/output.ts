/** How the terminal client writes: message lines, and status lines that keep the prompt intact. */
import { clearLine, cursorTo, type Interface } from "node:readline";
import type { ChatMessage } from "../../protocol.js";
import { formatTime } from "../shared/format.js";

/**
 * Control characters would let a message drive the terminal (escape sequences: colours, cursor
 * moves, a fake prompt): they print in caret notation instead, the terminal's "textContent".
 */
export function sanitize(text: string): string {
  return text.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, (ch) => {
    const code = ch.charCodeAt(0);
    if (code === 0x7f) return "^?";
    return code < 0x20 ? `^${String.fromCharCode(code + 64)}` : "?";
  });
}

/** `[lobby] 12:03 ann: hello`. One line when `oneLine` (scripts): newlines become the two characters \n. */
export function formatMessage(m: ChatMessage, oneLine: boolean): string {
  const head = `[${m.room}] ${formatTime(m.ts)} ${sanitize(m.from.name)}: `;
  const lines = m.text.split(/\r\n|\n|\r/).map(sanitize);
  return head + (oneLine ? lines.join("\\n") : lines.join(`\n${" ".repeat(head.length)}`));
}

export class Printer {
  private rl: Interface | undefined;

  /** With a prompt on screen, each line first clears it and then draws it again with what was typed. */
  attach(rl: Interface | undefined): void {
    this.rl = rl;
  }

  out(line: string): void {
    this.write(process.stdout, line);
  }

  err(line: string): void {
    this.write(process.stderr, line);
  }

  private write(stream: NodeJS.WriteStream, line: string): void {
    const rl = this.rl;
    if (rl && process.stdout.isTTY) {
      clearLine(process.stdout, 0);
      cursorTo(process.stdout, 0);
      stream.write(`${line}\n`);
      rl.prompt(true);
    } else {
      stream.write(`${line}\n`);
    }
  }
}
