export async function runChatClient(_args: string[]): Promise<number> {
  process.stderr.write("roomcast chat: not built yet\n");
  return 1;
}
