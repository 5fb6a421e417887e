import { describeAppProcessContract } from '@1688sync/testing';

describeAppProcessContract({ app: 'image-download-worker', consumes: 'image-download' });
