import { describeAppProcessContract } from '@1688sync/testing/app-contract';

describeAppProcessContract({ app: 'image-download-worker', consumes: 'image-download' });
