// The deployment files agree with the code: docker-compose.yml is valid for Compose, every
// kustomize overlay renders and every object passes its Kubernetes (or CRD) schema, and images,
// commands, ports, probes and environment names match the apps and the config schema.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Job } from 'kubernetes-models/batch/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, DEFAULT_APP_PORTS, childEnvironment, loadConfig } from '@1688sync/config';

const ROOT = path.resolve(__dirname, '../../..');
const APPS = ['ingest-api', 'image-download-worker', 'image-processing-worker', 'maintenance-worker'] as const;
const KNOWN_ENV = new Set<string>([...CONFIG_VARIABLES, 'TSX_TSCONFIG_PATH']);

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function run(command: string, args: string[], env?: Record<string, string>): string {
  try {
    return execFileSync(command, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: env && childEnvironment(env) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${command} is not installed (.ci/run installs docker-compose; kubectl comes with the machine)`);
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

function render(overlay: string): K8sObject[] {
  return parseAllDocuments(run('kubectl', ['kustomize', `k8s/overlays/${overlay}`])).map((d) => d.toJSON() as K8sObject).filter(Boolean);
}

const appOfCommand = (command: string[]) => /^apps\/([\w-]+)\/src\/main\.ts$/.exec(command[3] ?? '')?.[1];

type ComposeService = {
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  image?: string;
  profiles?: string[];
  depends_on?: Record<string, { condition: string }>;
};

describe('docker-compose.yml', () => {
  const composeConfig = (env?: Record<string, string>) =>
    parse(run('docker-compose', ['-f', 'docker-compose.yml', 'config'], env)) as { services: Record<string, ComposeService> };
  const config = composeConfig();

  it('is valid for Compose and has postgres, redis, the four apps, an optional minio with its bucket set-up and an optional PgBouncer', () => {
    expect(Object.keys(config.services).sort()).toEqual([...APPS, 'migrate', 'minio', 'minio-init', 'pgbouncer', 'postgres', 'redis'].sort());
    expect(config.services.minio.profiles).toEqual(['minio']);
    expect(config.services.pgbouncer.profiles).toEqual(['pgbouncer']);
    expect(config.services['minio-init'].profiles).toEqual(['minio']);
    for (const name of ['postgres', 'redis', ...APPS]) expect(config.services[name].healthcheck, name).toBeDefined();
  });

  it('runs each app from its own main.ts on its own port, with known variables only', () => {
    for (const app of APPS) {
      const service = config.services[app];
      expect(appOfCommand(service.command!)).toBe(app);
      expect(existsSync(path.join(ROOT, service.command![3]))).toBe(true);
      expect(Number(service.environment!.PORT)).toBe(DEFAULT_APP_PORTS[app]);
      expect(service.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${DEFAULT_APP_PORTS[app]}/readyz`);
      for (const name of Object.keys(service.environment!)) expect(KNOWN_ENV, `${app}: ${name}`).toContain(name);
      // The environment given must be one the config schema accepts.
      expect(() => loadConfig({ app, env: service.environment })).not.toThrow();
    }
  });

  it('points the apps at PgBouncer with DATABASE_URL, keeping DATABASE_DIRECT_URL on PostgreSQL for what needs a session', () => {
    const bounced = composeConfig({ DATABASE_URL: 'postgres://postgres@pgbouncer:6432/sync1688' });
    expect((bounced.services.pgbouncer as unknown as { environment: Record<string, string> }).environment).toEqual(expect.objectContaining({ POOL_MODE: 'transaction', LISTEN_PORT: '6432' }));
    for (const app of APPS) {
      expect(bounced.services[app].environment).toEqual(
        expect.objectContaining({ DATABASE_URL: 'postgres://postgres@pgbouncer:6432/sync1688', DATABASE_DIRECT_URL: 'postgres://postgres@postgres:5432/sync1688' }),
      );
    }
  });

  it('stores images in the minio bucket with STORAGE_DRIVER=s3, MinIO and minio-init using the same S3_* variables', () => {
    const s3 = composeConfig({ STORAGE_DRIVER: 's3', PUBLIC_BASE_URL: 'http://localhost:9000/1688sync', S3_BUCKET: 'images-bucket', S3_ACCESS_KEY_ID: 'key-id', S3_SECRET_ACCESS_KEY: 'key-secret' });
    const { minio, 'minio-init': init } = s3.services;
    for (const app of APPS) {
      const config = loadConfig({ app, env: s3.services[app].environment });
      expect(config.storage.driver, app).toBe('s3');
      expect(config.storage.publicBaseUrl, app).toBe('http://localhost:9000/1688sync');
      expect(config.storage.s3, app).toEqual({
        bucket: 'images-bucket',
        region: 'us-east-1',
        endpoint: 'http://minio:9000',
        forcePathStyle: true,
        accessKeyId: 'key-id',
        secretAccessKey: 'key-secret',
      });
    }
    expect(minio.environment).toMatchObject({ MINIO_ROOT_USER: 'key-id', MINIO_ROOT_PASSWORD: 'key-secret' });
    expect(init.environment).toEqual({ S3_BUCKET: 'images-bucket', S3_ACCESS_KEY_ID: 'key-id', S3_SECRET_ACCESS_KEY: 'key-secret' });
    expect(init.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    const script = init.command!.join(' ');
    expect(script).toContain('mc alias set local http://minio:9000');
    expect(script).toMatch(/mc mb --ignore-existing "local\/\$+S3_BUCKET"/);
    // Browsers read images straight from the bucket; backups/ stays private.
    expect(script).toMatch(/mc anonymous set download "local\/\$+S3_BUCKET\/products"/);
    // Without STORAGE_DRIVER, the default stack keeps its images on the volume.
    expect(loadConfig({ app: 'ingest-api', env: config.services['ingest-api'].environment }).storage.driver).toBe('fs');
  });
});

describe.each(['dev', 'prod'])('k8s/overlays/%s', (overlay) => {
  const objects = render(overlay);
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind);

  it('renders objects that each pass their schema', () => {
    expect(objects.length).toBeGreaterThan(15);
    for (const object of objects) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(Model, `no schema for ${object.apiVersion} ${object.kind}`).toBeDefined();
      expect(() => new Model(object as never).validate(), `${object.kind}/${object.metadata.name}`).not.toThrow();
    }
  });

  it('has everything the issue lists', () => {
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of ['Namespace', 'ConfigMap', 'Secret', 'Deployment', 'Service', 'Job', 'PodDisruptionBudget', 'ScaledObject', 'ServiceMonitor', 'PrometheusRule']) {
      expect(kinds, kind).toContain(kind);
    }
    // The dev overlay adds the optional PgBouncer component (k8s/components/pgbouncer).
    expect(byKind('Deployment').map((d) => d.metadata.name).sort()).toEqual([...APPS, ...(overlay === 'dev' ? ['pgbouncer'] : [])].sort());
    expect(byKind('PodDisruptionBudget')).toHaveLength(4);
    const dashboard = byKind('ConfigMap').find((c) => c.metadata.labels?.grafana_dashboard === '1') as unknown as { data: Record<string, string> };
    expect(JSON.parse(dashboard.data['grafana-dashboard.json']).panels.length).toBeGreaterThan(5);
    const alerts = (byKind('PrometheusRule')[0] as unknown as { spec: { groups: { rules: { alert: string; expr: string }[] }[] } }).spec.groups.flatMap((g) => g.rules);
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'Sync1688BackupTooOld',
      'Sync1688CriticalConsistencyFindings',
      'Sync1688FailedJobsRising',
      'Sync1688QueueBacklogGrowing',
      'Sync1688WebhookDeliveryLagging',
    ]);
    expect(alerts.find((a) => a.alert === 'Sync1688BackupTooOld')!.expr).toContain('26 * 3600');
    expect(alerts.find((a) => a.alert === 'Sync1688WebhookDeliveryLagging')!.expr).toBe('max(sync1688_webhook_oldest_undelivered_seconds) > 15 * 60');
  });

  it('has a "What changed" row on the dashboard: change events by type, webhook deliveries by status, the oldest undelivered event', () => {
    const dashboard = byKind('ConfigMap').find((c) => c.metadata.labels?.grafana_dashboard === '1') as unknown as { data: Record<string, string> };
    type Panel = { type: string; title: string; gridPos: { y: number }; targets?: { expr: string }[] };
    const panels = (JSON.parse(dashboard.data['grafana-dashboard.json']) as { panels: Panel[] }).panels;
    const row = panels.find((p) => p.type === 'row' && p.title === 'What changed');
    expect(row).toBeDefined();
    const below = panels.filter((p) => p.gridPos.y > row!.gridPos.y).flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(below).toEqual([
      'sum by (type) (rate(sync1688_change_events_total[5m]))',
      'sum by (status) (rate(sync1688_webhook_deliveries_total[5m]))',
      'max(sync1688_webhook_oldest_undelivered_seconds)',
    ]);
    // Ids are unique, as Grafana needs them to be.
    const ids = (JSON.parse(dashboard.data['grafana-dashboard.json']) as { panels: { id: number }[] }).panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('runs each app on its port with probes on /healthz and /readyz, non-root, read-only, with limits', () => {
    const configMap = byKind('ConfigMap').find((c) => c.metadata.name.startsWith('sync1688-config')) as unknown as { data: Record<string, string> };
    const shutdownSeconds = Number(configMap.data.SHUTDOWN_TIMEOUT_MS) / 1000;
    for (const d of byKind('Deployment') as unknown as { metadata: { name: string }; spec: { template: { spec: Record<string, never> } } }[]) {
      if (d.metadata.name === 'pgbouncer') continue; // not an app: probed on its TCP port
      const pod = d.spec.template.spec as unknown as {
        terminationGracePeriodSeconds: number;
        securityContext: { runAsNonRoot: boolean };
        containers: { command: string[]; ports: { containerPort: number }[]; env: { name: string; value: string }[]; livenessProbe: { httpGet: { path: string } }; readinessProbe: { httpGet: { path: string } }; resources: { limits: object; requests: object }; securityContext: { readOnlyRootFilesystem: boolean } }[];
      };
      const [c] = pod.containers;
      const app = appOfCommand(c.command)! as (typeof APPS)[number];
      expect(app).toBe(d.metadata.name);
      expect(c.ports[0].containerPort).toBe(DEFAULT_APP_PORTS[app]);
      expect(c.env.find((e) => e.name === 'PORT')?.value).toBe(String(DEFAULT_APP_PORTS[app]));
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(c.readinessProbe.httpGet.path).toBe('/readyz');
      expect(c.resources.limits).toBeDefined();
      expect(c.resources.requests).toBeDefined();
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(shutdownSeconds);
    }
  });

  it('uses only variables the config schema knows, with values it accepts', () => {
    const env: Record<string, string> = {};
    for (const c of [...byKind('ConfigMap'), ...byKind('Secret')]) {
      if ((c.metadata.labels ?? {}).grafana_dashboard || c.metadata.name === 'sync1688-pgbouncer') continue;
      Object.assign(env, (c as unknown as { data?: Record<string, string> }).data ?? {}, (c as unknown as { stringData?: Record<string, string> }).stringData ?? {});
    }
    for (const name of Object.keys(env)) expect(KNOWN_ENV, name).toContain(name);
    for (const app of APPS) expect(() => loadConfig({ app, env })).not.toThrow();
  });

  it('points DATABASE_URL at PgBouncer and DATABASE_DIRECT_URL at PostgreSQL where the PgBouncer component is in', () => {
    const secret = byKind('Secret').find((c) => c.metadata.name === 'sync1688-secrets') as unknown as { stringData: Record<string, string> };
    if (overlay === 'dev') {
      expect(new URL(secret.stringData.DATABASE_URL).host).toBe('pgbouncer:6432');
      expect(new URL(secret.stringData.DATABASE_DIRECT_URL).host).toBe('postgres:5432');
      const ini = (byKind('Secret').find((c) => c.metadata.name === 'sync1688-pgbouncer') as unknown as { stringData: Record<string, string> }).stringData['pgbouncer.ini'];
      expect(ini).toMatch(/^pool_mode = transaction$/m);
    } else {
      expect(secret.stringData.DATABASE_DIRECT_URL).toBeUndefined();
    }
  });

  it('autoscales the workers on the queue each consumes', () => {
    const scaled = byKind('ScaledObject') as unknown as { spec: { scaleTargetRef: { name: string }; triggers: { metadata: { query: string } }[] } }[];
    const deployments = new Set(byKind('Deployment').map((d) => d.metadata.name));
    for (const s of scaled) {
      expect(deployments).toContain(s.spec.scaleTargetRef.name);
      expect(s.spec.triggers[0].metadata.query).toContain('sync1688_queue_jobs');
    }
  });
});

describe('Dockerfile', () => {
  it('builds a non-root image with the PostgreSQL client that backups need', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain('postgresql-client');
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  it('builds the catalogue page in a stage of its own and copies only its output into the runtime image', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const stages = dockerfile.split(/^FROM /m).slice(1);
    const web = stages.find((s) => /^\S+ AS web$/m.test(s.split('\n')[0]));
    expect(web).toBeDefined();
    expect(web).toContain('npm run build -w @1688sync/web');
    expect(stages[stages.length - 1]).toContain('COPY --from=web /app/apps/web/dist apps/web/dist');
    // npm ci of a workspace needs every workspace's package.json: each install stage has each app's,
    // copied by itself or by a stage it is built FROM.
    const byName = new Map(stages.map((s) => [s.split('\n')[0].split(' AS ')[1]?.trim(), s]));
    const withBases = (stage: string): string => {
      const base = byName.get(stage.split(/\s/)[0]);
      return base ? stage + withBases(base) : stage;
    };
    for (const stage of stages.filter((s) => s.includes('npm ci'))) {
      for (const app of readdirSync(path.join(ROOT, 'apps'))) expect(withBases(stage)).toContain(`COPY apps/${app}/package.json apps/${app}/`);
    }
  });
});
