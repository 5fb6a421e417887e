// Terminal output of the CLI: colours and progress on a TTY, plain lines otherwise.
//
// Progress on a terminal is one line redrawn in place with \r (a bar when the total is known);
// elsewhere (CI logs, pipes, files) it is a plain line when a stage starts, every few seconds
// while it runs, and when it ends — never a stream of carriage returns.

export interface ProgressEvent {
  stage: string;
  done: number;
  total?: number;
}

export interface Progress {
  update(event: ProgressEvent): void;
  /** Finishes the current line (call before printing anything else). */
  end(): void;
}

export interface Output {
  readonly tty: boolean;
  info(line: string): void;
  error(line: string): void;
  banner(lines: string[]): void;
  prefixed(source: string, line: string): void;
  /** A line without the `1688sync` prefix (reports, tables). */
  print(line?: string): void;
  /** Text in a colour on a terminal (red 31, green 32, yellow 33, bold 1, dim 2), plain otherwise. */
  paint(code: number, text: string): string;
  /** Rows as aligned columns; the first row is the header. Numbers are right-aligned. */
  table(rows: (string | number)[][]): void;
  progress(label: string, options?: { plainIntervalMs?: number; redrawMs?: number }): Progress;
}

const COLORS = [36, 33, 35, 32, 34, 31];
const BAR_WIDTH = 30;

export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const plainLength = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '').length;

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function progressText(label: string, { stage, done, total }: ProgressEvent, bar: boolean): string {
  if (total === undefined || total <= 0) return `${label} ${stage}: ${formatCount(done)}${total === 0 ? ' (nothing to do)' : ''}`;
  const ratio = Math.min(1, done / total);
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
  const counts = `${formatCount(Math.min(done, total))}/${formatCount(total)}`;
  if (!bar) return `${label} ${stage}: ${counts} (${percent.trim()})`;
  const filled = Math.round(ratio * BAR_WIDTH);
  return `${label} ${stage} [${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${percent} ${counts}`;
}

export function createOutput(stdout: OutputStream = process.stdout, stderr: OutputStream = process.stderr): Output {
  const tty = Boolean(stdout.isTTY);
  const paint = (code: number, text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
  const sources = new Map<string, number>();
  const width = 24;
  return {
    tty,
    paint,
    info: (line) => stdout.write(`${paint(1, '1688sync')} ${line}\n`),
    error: (line) => stderr.write(`${paint(31, '1688sync error:')} ${line}\n`),
    banner: (lines) => stdout.write(`\n${lines.map((l) => paint(1, l)).join('\n')}\n\n`),
    print: (line = '') => stdout.write(`${line}\n`),
    prefixed(source, line) {
      if (!sources.has(source)) sources.set(source, COLORS[sources.size % COLORS.length]);
      stdout.write(`${paint(sources.get(source)!, `[${source}]`.padEnd(width))} ${line}\n`);
    },
    table(rows) {
      if (!rows.length) return;
      const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatCount(c) : c)));
      const numeric = rows[rows.length > 1 ? 1 : 0].map((c) => typeof c === 'number');
      const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => plainLength(r[i] ?? ''))));
      cells.forEach((r, rowIndex) => {
        const line = r
          .map((c, i) => {
            const pad = ' '.repeat(widths[i] - plainLength(c));
            return numeric[i] ? pad + c : c + pad;
          })
          .join('  ')
          .trimEnd();
        stdout.write(`${rowIndex === 0 ? paint(1, line) : line}\n`);
      });
    },
    progress(label, { plainIntervalMs = 5000, redrawMs = 100 } = {}) {
      let last: ProgressEvent | null = null; // the latest event of the current stage
      let shown: ProgressEvent | null = null; // what the screen or log says now
      let shownAt = 0;
      const show = (event: ProgressEvent) => {
        if (tty) {
          const text = progressText(label, event, true);
          const columns = stdout.columns ?? 100;
          stdout.write(`\r\x1b[2K${text.length >= columns ? text.slice(0, columns - 1) : text}`);
        } else {
          stdout.write(`${progressText(label, event, false)}\n`);
        }
        shown = event;
        shownAt = Date.now();
      };
      /** Shows the stage's final figures and, on a terminal, moves past its line. */
      const finishStage = () => {
        if (last && last !== shown) show(last);
        if (tty && shown) stdout.write('\n');
        last = null;
        shown = null;
      };
      return {
        update(event) {
          if (last && event.stage !== last.stage) finishStage();
          const first = last === null;
          last = event;
          const complete = event.total !== undefined && event.done >= event.total;
          if (first || Date.now() - shownAt >= (tty ? redrawMs : plainIntervalMs) || (tty && complete)) show(event);
        },
        end: finishStage,
      };
    },
  };
}
