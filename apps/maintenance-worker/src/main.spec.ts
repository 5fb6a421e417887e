import { describeAppProcessContract } from '@1688sync/testing/app-contract';

describeAppProcessContract({ app: 'maintenance-worker', consumes: 'maintenance' });
