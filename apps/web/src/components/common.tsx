// Small pieces every view uses: loading and error states, status badges, a scrollable table region.
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api';

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

export function Failure({ error }: { error: unknown }) {
  const message = error instanceof ApiError ? `${error.message} (${error.status})` : error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

const TONE: Record<string, string> = {
  active: 'ok',
  synced: 'ok',
  processed: 'ok',
  downloaded: 'ok',
  delivered: 'ok',
  succeeded: 'ok',
  published: 'ok',
  inactive: 'warn',
  pending: 'info',
  downloading: 'info',
  processing: 'info',
  running: 'info',
  skipped: 'muted',
  partial: 'warn',
  failed: 'bad',
  deleted: 'bad',
};

export function Badge({ children, tone }: { children: string; tone?: string }) {
  return <span class={`badge badge-${tone ?? TONE[children] ?? 'muted'}`}>{children}</span>;
}

/** A wide table that scrolls on a narrow screen; focusable so the keyboard can scroll it too. */
export function TableRegion({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="table-region" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
