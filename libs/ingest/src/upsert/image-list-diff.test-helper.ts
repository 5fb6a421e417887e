// The database and factories of the image-list diff's specs: those of the image repositories'
// specs in libs/db, with the real diff (diffImageLists) plugged in.
import { useImageListDiff } from '@1688sync/db/image-repositories.test-helper';
import { diffImageLists } from './image-list-diff';

useImageListDiff(diffImageLists);

export * from '@1688sync/db/image-repositories.test-helper';
