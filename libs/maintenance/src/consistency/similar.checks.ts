// The 同款 checks (SPEC §12): processed images without fingerprints (made before processing took
// them; fix mode queues the fingerprint backfill), and group members whose product was deleted
// (the next group-similar run drops them; fix mode queues it).
import { JobName } from '@1688sync/queues';
import { requestMaintenance } from '../maintenance-requests.service';
import type { ConsistencyCheck } from './consistency-check.types';
import { walkById } from './keyset-walk';

export const unfingerprintedImagesCheck: ConsistencyCheck = {
  stage: 'unfingerprinted-images',
  reports: [
    {
      check: 'unfingerprinted-images',
      severity: 'info',
      suggestedFix: () =>
        'Processed images without phash, thumbhash and dominant colour (processed before fingerprints existed): they are not ' +
        'found by /similar nor grouped. Run `1688sync images fingerprint` (or POST /v1/images/fingerprint); fix mode queues ' +
        'the fingerprint-backfill job.',
    },
  ],
  async run({ scans, settings, producers, progress }, finding) {
    let seen = 0;
    await walkById((after, limit) => scans.unfingerprintedImages(after, limit), settings.pageSize, async (page) => {
      for (const image of page) finding.found({ imageId: image.id, productId: image.productId });
      progress((seen += page.length));
    });
    if (settings.fix && seen > 0) {
      await requestMaintenance(producers, JobName.FingerprintBackfill, {}, { requestedBy: 'consistency-check', deadlineMs: 5000 });
      finding.note('backfill queued');
    }
  },
};

export const groupsWithDeletedMembersCheck: ConsistencyCheck = {
  stage: 'groups-with-deleted-members',
  reports: [
    {
      check: 'groups-with-deleted-members',
      severity: 'info',
      suggestedFix: () =>
        '同款 groups still list products that were deleted since the last group-similar run (the API leaves them out). ' +
        'Run `1688sync group-similar`; fix mode queues the group-similar job.',
    },
  ],
  async run({ scans, settings, producers, progress }, finding) {
    let seen = 0;
    await walkById((after, limit) => scans.deletedGroupMembers(after, limit), settings.pageSize, async (page) => {
      for (const member of page) finding.found({ productId: member.id, groupId: member.groupId });
      progress((seen += page.length));
    });
    if (settings.fix && seen > 0) {
      await requestMaintenance(producers, JobName.GroupSimilar, {}, { requestedBy: 'consistency-check', deadlineMs: 5000 });
      finding.note('group-similar queued');
    }
  },
};
