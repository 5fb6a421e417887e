export * from './webhook-signature';
export * from './webhook-url';
export * from './webhook-retry';
export * from './webhook-sender';
export * from './webhook-request';
export * from './webhook-dispatcher';
export * from './webhook-dispatch-loop';
export * from './webhook-delivery.worker';
