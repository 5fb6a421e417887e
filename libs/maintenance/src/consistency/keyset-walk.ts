// The keyset walk every row check uses: pages of `id > $after ORDER BY id LIMIT $n`, one page in
// memory at a time, until a short page.
import { NIL_UUID } from '@1688sync/db';

/** Walks `fetch` in keyset pages by id until a short page, handing each page to `onPage`. */
export async function walkById<T extends { id: string }>(
  fetch: (after: string, limit: number) => Promise<T[]>,
  pageSize: number,
  onPage: (page: T[]) => Promise<void> | void,
): Promise<void> {
  let after = NIL_UUID;
  for (;;) {
    const page = await fetch(after, pageSize);
    if (page.length) await onPage(page);
    if (page.length < pageSize) return;
    after = page[page.length - 1].id;
  }
}
