// Every migration, in order. Migrations live with the entities, and a spec keeps the two equal.
import type { MigrationInterface } from 'typeorm';
import { InitialSchema1764100000000 } from './1764100000000-initial-schema';
import { ConsistencyReports1764200000000 } from './1764200000000-consistency-reports';
import { Backups1764300000000 } from './1764300000000-backups';
import { Changes1764400000000 } from './1764400000000-changes';
import { Offer1764500000000 } from './1764500000000-offer';
import { FingerprintsAndGroups1764600000000 } from './1764600000000-fingerprints-and-groups';

export const MIGRATIONS: (new () => MigrationInterface)[] = [InitialSchema1764100000000, ConsistencyReports1764200000000, Backups1764300000000, Changes1764400000000, Offer1764500000000, FingerprintsAndGroups1764600000000];
