import { describeAppProcessContract } from '@1688sync/testing';

describeAppProcessContract({ app: 'ingest-api', consumes: 'product-ingest' });
