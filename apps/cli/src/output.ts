// Terminal output of the CLI: colours and progress on a TTY, plain lines otherwise.

export interface Output {
  readonly tty: boolean;
  info(line: string): void;
  error(line: string): void;
  banner(lines: string[]): void;
  prefixed(source: string, line: string): void;
}

const COLORS = [36, 33, 35, 32, 34, 31];

export function createOutput(stdout: NodeJS.WriteStream = process.stdout, stderr: NodeJS.WriteStream = process.stderr): Output {
  const tty = Boolean(stdout.isTTY);
  const paint = (code: number, text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
  const sources = new Map<string, number>();
  const width = 24;
  return {
    tty,
    info: (line) => stdout.write(`${paint(1, '1688sync')} ${line}\n`),
    error: (line) => stderr.write(`${paint(31, '1688sync error:')} ${line}\n`),
    banner: (lines) => stdout.write(`\n${lines.map((l) => paint(1, l)).join('\n')}\n\n`),
    prefixed(source, line) {
      if (!sources.has(source)) sources.set(source, COLORS[sources.size % COLORS.length]);
      stdout.write(`${paint(sources.get(source)!, `[${source}]`.padEnd(width))} ${line}\n`);
    },
  };
}
