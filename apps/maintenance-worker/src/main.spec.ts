import { describeAppProcessContract } from '@1688sync/testing';

describeAppProcessContract({ app: 'maintenance-worker', consumes: 'maintenance' });
