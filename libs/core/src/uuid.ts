// The shape of the ids 1688sync gives its rows (PostgreSQL uuid, any version), checked before an
// id reaches a query or a storage key.
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: string): boolean => UUID_PATTERN.test(value);
