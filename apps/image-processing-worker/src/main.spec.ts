import { describeAppProcessContract } from '@1688sync/testing';

describeAppProcessContract({ app: 'image-processing-worker', consumes: 'image-process' });
