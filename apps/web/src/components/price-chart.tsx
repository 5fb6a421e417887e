// The price history (GET /v1/products/:id/history, §11) drawn by hand as SVG: lowest and highest price as
// steps over time. No charting library: two paths and four labels are all it needs.
import { dateTime, money, stepPath } from '../format';
import type { HistoryPoint } from '../types';

const WIDTH = 640;
const HEIGHT = 200;
const MARGIN = 28;

export function PriceChart({ points, currency }: { points: HistoryPoint[]; currency: string }) {
  const prices = points.flatMap((p) => [p.priceMin, p.priceMax]).filter((v): v is number => v !== null);
  if (points.length === 0 || prices.length === 0) return <p class="muted">No price history yet.</p>;
  const min = Math.min(...prices);
  const max = Math.max(...prices);
  const from = new Date(points[0].at).getTime();
  const last = new Date(points[points.length - 1].at).getTime();
  const to = Math.max(last, Date.now(), from + 1);
  const box = { width: WIDTH, height: HEIGHT, margin: MARGIN, min, max, from, to };
  const low = stepPath(points.map((p) => ({ at: p.at, value: p.priceMin })), box);
  const high = stepPath(points.map((p) => ({ at: p.at, value: p.priceMax })), box);
  const summary = `Price history: ${points.length} observation(s) from ${dateTime(points[0].at)}; lowest ${money(min, currency)}, highest ${money(max, currency)}.`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary} preserveAspectRatio="none">
        <line class="axis" x1={MARGIN} y1={HEIGHT - MARGIN} x2={WIDTH - MARGIN} y2={HEIGHT - MARGIN} />
        <line class="axis" x1={MARGIN} y1={MARGIN} x2={MARGIN} y2={HEIGHT - MARGIN} />
        <path class="line-high" d={high} />
        <path class="line-low" d={low} />
        <text x={MARGIN + 4} y={MARGIN - 8}>
          {money(max, currency)}
        </text>
        <text x={MARGIN + 4} y={HEIGHT - MARGIN + 18}>
          {money(min, currency)}
        </text>
      </svg>
      <figcaption>
        <span class="key key-low">lowest price</span> <span class="key key-high">highest price</span> · {points.length} point(s) since {dateTime(points[0].at)}
      </figcaption>
    </figure>
  );
}
