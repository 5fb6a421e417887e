import { describeAppProcessContract } from '@1688sync/testing/app-contract';

describeAppProcessContract({ app: 'image-processing-worker', consumes: 'image-process' });
