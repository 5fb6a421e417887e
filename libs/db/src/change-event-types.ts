// The types of change events (docs/changes.md): the one list the recorders, the feed's
// `types` filter and the webhook subscriptions' `events` agree on.

export const CHANGE_EVENT_TYPES = [
  'product.created',
  'product.updated',
  'product.price_changed',
  'product.stock_changed',
  'product.out_of_stock',
  'product.restocked',
  'product.delisted',
  'product.relisted',
  'product.deleted',
  'product.restored',
  'product.images_ready',
  'product.group_changed',
  'supplier.created',
  'supplier.updated',
  'supplier.deleted',
  'supplier.restored',
] as const;

export type ChangeEventType = (typeof CHANGE_EVENT_TYPES)[number];

export const isChangeEventType = (value: string): value is ChangeEventType => (CHANGE_EVENT_TYPES as readonly string[]).includes(value);
