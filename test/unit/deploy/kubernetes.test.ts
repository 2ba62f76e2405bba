/**
 * deploy/kubernetes: every manifest is valid against the JSON schema of its kind (kubernetes-models
 * for the Kubernetes API, @kubernetes-models/keda for KEDA's CRDs) with no unknown fields, and
 * the pieces fit together: the ConfigMap's keys are settings of src/config.ts that load, the
 * passwords come from the Secret as files, probes hit /healthz and /readyz on HTTP_PORT, the
 * grace period outlasts SHUTDOWN_TIMEOUT_SECONDS, and KEDA scales the right group up to the
 * partition count.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { checkEnv } from './deploy-env';
import { REPO } from './dockerfile-model';
import { declarationOf, unknownFields } from './k8s-strict';

const DIR = join(REPO, 'deploy', 'kubernetes');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Manifest {
  file: string;
  doc: Obj;
}

/** Kubernetes reads YAML 1.1 (`0440` is octal there). */
function load(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8'), { version: '1.1' }).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Obj;
  });
}

const FILES = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
const MANIFESTS: Manifest[] = FILES.flatMap((file) => load(file).map((doc) => ({ file, doc })));
const KUSTOMIZATION = load('kustomization.yaml')[0] as Obj;

/** apiVersion/kind → [package, model path]. */
const MODELS: Record<string, [string, string]> = {
  'v1/ConfigMap': ['kubernetes-models', 'v1/ConfigMap'],
  'v1/Secret': ['kubernetes-models', 'v1/Secret'],
  'v1/Service': ['kubernetes-models', 'v1/Service'],
  'apps/v1/Deployment': ['kubernetes-models', 'apps/v1/Deployment'],
  'batch/v1/Job': ['kubernetes-models', 'batch/v1/Job'],
  'policy/v1/PodDisruptionBudget': ['kubernetes-models', 'policy/v1/PodDisruptionBudget'],
  'autoscaling/v2/HorizontalPodAutoscaler': ['kubernetes-models', 'autoscaling/v2/HorizontalPodAutoscaler'],
  'keda.sh/v1alpha1/ScaledObject': ['@kubernetes-models/keda', 'keda.sh/v1alpha1/ScaledObject'],
  'keda.sh/v1alpha1/TriggerAuthentication': ['@kubernetes-models/keda', 'keda.sh/v1alpha1/TriggerAuthentication'],
};

function one(kind: string): Obj {
  const found = MANIFESTS.filter((m) => m.doc.kind === kind);
  expect(found).toHaveLength(1);
  return (found[0] as Manifest).doc;
}

/** The one manifest of this kind and name. */
function named(kind: string, name: string): Obj {
  const found = MANIFESTS.filter((m) => m.doc.kind === kind && m.doc.metadata?.name === name);
  expect(found).toHaveLength(1);
  return (found[0] as Manifest).doc;
}

const configMap = one('ConfigMap');
/** The Secret's shape: an example, deliberately outside the kustomization. */
const secret = load('secret-example/secret.yaml')[0] as Obj;
const dashboardSecret = load('secret-example/dashboard-secret.yaml')[0] as Obj;
const deployment = named('Deployment', 'sessionizer-worker');
const collectorDeployment = named('Deployment', 'sessionizer-collector');
const job = one('Job');
const scaledObject = one('ScaledObject');
const triggerAuth = one('TriggerAuthentication');
const data = configMap.data as Record<string, string>;
const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
const worker = (deployment.spec.template.spec.containers as Obj[]).find((c) => c.name === 'worker') as Obj;

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Kubernetes manifests: schemas', () => {
  it('has the expected kinds, each file listed in kustomization.yaml', () => {
    expect(MANIFESTS.map((m) => m.doc.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'Deployment', 'Deployment', 'HorizontalPodAutoscaler', 'Job', 'PodDisruptionBudget', 'ScaledObject', 'Service', 'Service', 'Service', 'TriggerAuthentication'].sort(),
    );
    expect([...(KUSTOMIZATION.resources as string[])].sort()).toEqual([...FILES].sort());
  });

  it('never applies a Secret: `kubectl apply -k` must not overwrite the real credentials with placeholders', () => {
    expect(MANIFESTS.filter((m) => m.doc.kind === 'Secret')).toEqual([]);
    expect(KUSTOMIZATION.secretGenerator).toBeUndefined();
    for (const resource of KUSTOMIZATION.resources as string[]) expect(resource).not.toMatch(/secret/i);
    expect(secret).toMatchObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sessionizer-credentials' } });
    expect(dashboardSecret).toMatchObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sessionizer-dashboard' } });
  });

  it.each([...MANIFESTS, { file: 'secret-example/secret.yaml', doc: secret }, { file: 'secret-example/dashboard-secret.yaml', doc: dashboardSecret }].map((m) => [`${m.file}: ${m.doc.kind} ${m.doc.metadata?.name}`, m] as const))('%s validates against its JSON schema, no unknown fields', (_, { doc }) => {
    const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    expect(model).toBeDefined();
    const [pkg, path] = model as [string, string];
    const exported = require(`${pkg}/${path}`) as Record<string, new (data: unknown) => { validate(): void }>; // eslint-disable-line @typescript-eslint/no-require-imports
    const Model = exported[posix.basename(path)] as new (data: unknown) => { validate(): void };
    expect(() => new Model(doc).validate()).not.toThrow();
    expect(unknownFields(doc, declarationOf(pkg, path))).toEqual([]);
    expect(doc.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(doc.metadata.namespace).toBeUndefined(); // kustomization.yaml sets it
  });

  it('the schema check does catch mistakes (a wrong type, a missing required field, a typo)', () => {
    const { Deployment } = require('kubernetes-models/apps/v1/Deployment') as { Deployment: new (d: unknown) => { validate(): void } }; // eslint-disable-line @typescript-eslint/no-require-imports
    const broken = structuredClone(deployment);
    broken.spec.template.spec.containers[0].livenessProbe.periodSeconds = 'often';
    expect(() => new Deployment(broken).validate()).toThrow(/periodSeconds must be integer/);
    const { ScaledObject } = require('@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject') as { ScaledObject: new (d: unknown) => { validate(): void } }; // eslint-disable-line @typescript-eslint/no-require-imports
    const noTarget = structuredClone(scaledObject);
    delete noTarget.spec.scaleTargetRef;
    expect(() => new ScaledObject(noTarget).validate()).toThrow(/scaleTargetRef/);
    const typo = structuredClone(deployment);
    typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.containers[0].readinessProbe;
    expect(unknownFields(typo, declarationOf('kubernetes-models', 'apps/v1/Deployment'))).toEqual(['.spec.template.spec.containers[0].readinesProbe']);
  });
});

describe('Kubernetes manifests: configuration', () => {
  const required = ['KAFKA_BROKERS', 'KAFKA_TOPICS', 'KAFKA_GROUP_ID', 'REDIS_URL', 'REDIS_PASSWORD', 'CLICKHOUSE_URL', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_DATABASE'];

  it('ConfigMap keys are settings of src/config.ts, passwords only as *_FILE, and the whole loads', () => {
    const { problems, config } = checkEnv(data, required);
    expect(problems).toEqual([]);
    expect(config?.kafka.sasl?.mechanism).toBe('scram-sha-512');
    expect(config?.redis.tls).toBe(true);
    expect(config?.clickhouse.url).toMatch(/^https:/);
  });

  it('every *_FILE is a key of the Secret, mounted read-only where the worker and the migrate job look', () => {
    const keys = Object.keys({ ...secret.stringData, ...secret.data });
    for (const pod of [deployment.spec.template.spec, collectorDeployment.spec.template.spec, job.spec.template.spec] as Obj[]) {
      const container = pod.containers[0] as Obj;
      expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
      expect(container.env ?? []).toEqual([]);
      for (const [key, path] of Object.entries(data).filter(([k]) => k.endsWith('_FILE'))) {
        const mount = (container.volumeMounts as Obj[]).find((m) => path.startsWith(`${m.mountPath}/`));
        expect({ key, mounted: Boolean(mount) }).toEqual({ key, mounted: true });
        expect(mount?.readOnly).toBe(true);
        const volume = (pod.volumes as Obj[]).find((v) => v.name === mount?.name);
        expect(volume?.secret?.secretName).toBe(secret.metadata.name);
        expect(volume?.secret?.defaultMode).toBe(0o440);
        expect(keys).toContain(posix.basename(path));
      }
    }
  });

  it('the Secrets hold placeholders only, never a real credential', () => {
    for (const example of [secret, dashboardSecret]) {
      for (const value of Object.values(example.stringData as Record<string, string>)) expect(value).toBe('REPLACE_ME');
      expect(example.data).toBeUndefined();
    }
  });
});

describe('Kubernetes manifests: the worker Deployment', () => {
  const port = Number(data.HTTP_PORT);

  it('runs `worker` as a non-root user with a read-only root filesystem', () => {
    expect(worker.args).toEqual(['worker']);
    const pod = deployment.spec.template.spec as Obj;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(worker.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
  });

  it('probes liveness on /healthz and readiness on /readyz, on the HTTP_PORT of the ConfigMap', () => {
    const named = (worker.ports as Obj[]).find((p) => p.name === worker.livenessProbe.httpGet.port);
    expect(named?.containerPort).toBe(port);
    expect(worker.livenessProbe.httpGet.path).toBe('/healthz');
    expect(worker.readinessProbe.httpGet.path).toBe('/readyz');
    expect(worker.readinessProbe.httpGet.port).toBe(worker.livenessProbe.httpGet.port);
    expect(deployment.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port));
  });

  it('requests CPU and memory and limits memory above the measured peak (479 MB RSS, one worker owning all 12 partitions)', () => {
    expect(worker.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    const mebibytes = (quantity: string) => Number(/^(\d+)Mi$/.exec(quantity)?.[1] ?? /^(\d+)Gi$/.exec(quantity)?.[1] ?? NaN) * (quantity.endsWith('Gi') ? 1024 : 1);
    const peak = 479e6 / 2 ** 20;
    expect(mebibytes(worker.resources.limits.memory)).toBeGreaterThan(peak * 1.25);
    expect(mebibytes(worker.resources.requests.memory)).toBeGreaterThanOrEqual(peak);
    expect(Number(data.KAFKA_TOPIC_PARTITIONS)).toBe(12);
  });

  it('gives the pod longer to stop than SHUTDOWN_TIMEOUT_SECONDS', () => {
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(Number(data.SHUTDOWN_TIMEOUT_SECONDS) + 5);
  });

  it('spreads its pods over zones and nodes', () => {
    const constraints = deployment.spec.template.spec.topologySpreadConstraints as Obj[];
    expect(constraints.map((c) => c.topologyKey).sort()).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const c of constraints) expect(matches(c.labelSelector.matchLabels, podLabels)).toBe(true);
  });

  it('the PodDisruptionBudget and the Service select exactly the worker pods', () => {
    const pdb = one('PodDisruptionBudget');
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec.maxUnavailable ?? deployment.spec.replicas - pdb.spec.minAvailable).toBe(1);
    const service = named('Service', 'sessionizer-worker');
    expect(matches(service.spec.selector, podLabels)).toBe(true);
    expect((worker.ports as Obj[]).map((p) => p.name)).toContain(service.spec.ports[0].targetPort);
  });

  it('the migrate Job runs `migrate` once, with retries and a deadline', () => {
    const container = job.spec.template.spec.containers[0] as Obj;
    expect(container.args).toEqual(['migrate']);
    expect(container.image).toBe(worker.image);
    expect(['OnFailure', 'Never']).toContain(job.spec.template.spec.restartPolicy);
    expect(job.spec.backoffLimit).toBeGreaterThan(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
  });
});

describe('Kubernetes manifests: the collector', () => {
  const collector = (collectorDeployment.spec.template.spec.containers as Obj[])[0] as Obj;
  const collectorLabels = collectorDeployment.spec.template.metadata.labels as Record<string, string>;
  const portNamed = (name: string) => (collector.ports as Obj[]).find((p) => p.name === name)?.containerPort;

  it('runs `collect` as a non-root user with a read-only root filesystem, its own pods apart from the workers', () => {
    expect(collector.args).toEqual(['collect']);
    expect(collector.image).toBe(worker.image);
    expect(collectorDeployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(collector.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(matches(collectorDeployment.spec.selector.matchLabels, collectorLabels)).toBe(true);
    expect(matches(deployment.spec.selector.matchLabels, collectorLabels)).toBe(false);
    expect(matches(collectorDeployment.spec.selector.matchLabels, podLabels)).toBe(false);
  });

  it('serves the API on COLLECT_PORT and probes /healthz and /readyz on HTTP_PORT', () => {
    expect(portNamed('api')).toBe(Number(data.COLLECT_PORT));
    expect(portNamed(collector.livenessProbe.httpGet.port)).toBe(Number(data.HTTP_PORT));
    expect(collector.livenessProbe.httpGet.path).toBe('/healthz');
    expect(collector.readinessProbe.httpGet.path).toBe('/readyz');
    expect(collectorDeployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(Number(data.SHUTDOWN_TIMEOUT_SECONDS) + 5);
    const { problems, config } = checkEnv(data, ['COLLECT_WRITE_KEYS']);
    expect(problems).toEqual([]);
    expect(config?.collect.trustedProxies.length).toBeGreaterThan(0);
  });

  it('the Service selects exactly the collector pods and exposes the API', () => {
    const service = named('Service', 'sessionizer-collector');
    expect(matches(service.spec.selector, collectorLabels)).toBe(true);
    expect(matches(service.spec.selector, podLabels)).toBe(false);
    const api = (service.spec.ports as Obj[]).find((p) => p.name === 'api');
    expect(portNamed(api?.targetPort)).toBe(Number(data.COLLECT_PORT));
  });

  it('the HPA scales the collector Deployment on CPU, from at least 2 replicas, which request CPU', () => {
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: collectorDeployment.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: expect.any(Number) } } }]);
    expect(collector.resources.requests.cpu).toEqual(expect.any(String));
  });
});

describe('Kubernetes manifests: the dashboard', () => {
  const dashboardDeployment = named('Deployment', 'sessionizer-dashboard');
  const pod = dashboardDeployment.spec.template.spec as Obj;
  const dashboard = (pod.containers as Obj[])[0] as Obj;
  const dashboardLabels = dashboardDeployment.spec.template.metadata.labels as Record<string, string>;
  const own = Object.fromEntries((dashboard.env as Obj[]).map((e) => [e.name, String(e.value)]));
  const portNamed = (name: string) => (dashboard.ports as Obj[]).find((p) => p.name === name)?.containerPort;

  it('runs `dashboard` as a non-root user with a read-only root filesystem, its own pods apart from the others', () => {
    expect(dashboard.args).toEqual(['dashboard']);
    expect(dashboard.image).toBe(worker.image);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(dashboard.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(matches(dashboardDeployment.spec.selector.matchLabels, dashboardLabels)).toBe(true);
    for (const other of [deployment, collectorDeployment]) {
      expect(matches(other.spec.selector.matchLabels, dashboardLabels)).toBe(false);
      expect(matches(dashboardDeployment.spec.selector.matchLabels, other.spec.template.metadata.labels)).toBe(false);
    }
    expect(dashboardDeployment.spec.replicas).toBeGreaterThanOrEqual(2);
  });

  it('takes the shared ConfigMap and its own settings, which load, the access file and session secret as files of its Secret', () => {
    expect(dashboard.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    const { problems, config } = checkEnv({ ...data, ...own }, ['CLICKHOUSE_URL', 'CLICKHOUSE_PASSWORD', 'DASHBOARD_CONFIG', 'DASHBOARD_SESSION_SECRET']);
    expect(problems).toEqual([]);
    expect(config?.dashboard.port).toBe(portNamed('web'));
    expect(config?.dashboard.trustedProxies.length).toBeGreaterThan(0);
    const keys = Object.keys(dashboardSecret.stringData as Record<string, string>);
    for (const path of [own.DASHBOARD_CONFIG, own.DASHBOARD_SESSION_SECRET_FILE] as string[]) {
      const mount = (dashboard.volumeMounts as Obj[]).find((m) => path.startsWith(`${m.mountPath}/`));
      expect(mount?.readOnly).toBe(true);
      const volume = (pod.volumes as Obj[]).find((v) => v.name === mount?.name);
      expect(volume?.secret).toEqual({ secretName: dashboardSecret.metadata.name, defaultMode: 0o440 });
      expect(keys).toContain(posix.basename(path));
    }
    // The shared *_FILE settings (the ClickHouse password among them) resolve in this pod too.
    for (const path of Object.entries(data).filter(([k]) => k.endsWith('_FILE')).map(([, v]) => v)) {
      const mount = (dashboard.volumeMounts as Obj[]).find((m) => path.startsWith(`${m.mountPath}/`));
      expect((pod.volumes as Obj[]).find((v) => v.name === mount?.name)?.secret?.secretName).toBe(secret.metadata.name);
    }
  });

  it('probes /healthz and /readyz on HTTP_PORT, and the Service selects exactly its pods and exposes the pages', () => {
    expect(portNamed(dashboard.livenessProbe.httpGet.port)).toBe(Number(data.HTTP_PORT));
    expect(dashboard.livenessProbe.httpGet.path).toBe('/healthz');
    expect(dashboard.readinessProbe.httpGet).toEqual({ path: '/readyz', port: dashboard.livenessProbe.httpGet.port });
    expect(dashboardDeployment.spec.template.metadata.annotations['prometheus.io/port']).toBe(data.HTTP_PORT);
    const service = named('Service', 'sessionizer-dashboard');
    expect(matches(service.spec.selector, dashboardLabels)).toBe(true);
    expect(matches(service.spec.selector, podLabels)).toBe(false);
    const web = (service.spec.ports as Obj[]).find((p) => p.name === 'web');
    expect(portNamed(web?.targetPort)).toBe(Number(own.DASHBOARD_PORT));
    expect(dashboard.resources.limits.memory).toEqual(expect.any(String));
  });
});

describe('Kubernetes manifests: KEDA', () => {
  const trigger = (scaledObject.spec.triggers as Obj[])[0] as Obj;

  it('scales the worker Deployment on the lag of its own consumer group and topic', () => {
    expect(scaledObject.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
    expect(trigger.type).toBe('kafka');
    expect(trigger.metadata.consumerGroup).toBe(data.KAFKA_GROUP_ID);
    expect(trigger.metadata.topic).toBe(data.KAFKA_TOPICS?.split(',')[0]);
    expect(trigger.metadata.bootstrapServers).toBe(data.KAFKA_BROKERS);
    // About 10 s of one worker's measured throughput (59,977 events/s, BENCHMARKS.md), halved for
    // production networks: between 5 and 30 s of work at 30,000 events/s.
    const threshold = Number(trigger.metadata.lagThreshold);
    expect(threshold).toBeGreaterThanOrEqual(5 * 30_000);
    expect(threshold).toBeLessThanOrEqual(30 * 30_000);
    expect(readFileSync(join(REPO, 'BENCHMARKS.md'), 'utf8')).toContain('59,977 events/s');
    expect(trigger.metadata.tls === 'enable').toBe(data.KAFKA_SSL === 'true');
    const kedaSasl: Record<string, string> = { plain: 'plaintext', 'scram-sha-256': 'scram_sha256', 'scram-sha-512': 'scram_sha512' };
    expect(trigger.metadata.sasl).toBe(kedaSasl[data.KAFKA_SASL_MECHANISM ?? '']);
  });

  it('allows 1 to partition-count replicas (never 0: sessions close by the clock), as README.md says', () => {
    expect(scaledObject.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaledObject.spec.maxReplicaCount).toBe(Number(data.KAFKA_TOPIC_PARTITIONS));
    const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
    expect(readme).toContain('maxReplicaCount');
    expect(readme).toContain('KAFKA_TOPIC_PARTITIONS');
  });

  it('authenticates with the Secret and the worker container environment', () => {
    expect(trigger.authenticationRef.name).toBe(triggerAuth.metadata.name);
    const params = [...(triggerAuth.spec.secretTargetRef as Obj[]), ...(triggerAuth.spec.env as Obj[])].map((p) => p.parameter).sort();
    expect(params).toEqual(['password', 'username']);
    for (const ref of triggerAuth.spec.secretTargetRef as Obj[]) {
      expect(ref.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData)).toContain(ref.key);
    }
    for (const ref of triggerAuth.spec.env as Obj[]) {
      expect(ref.containerName).toBe(worker.name);
      expect(Object.keys(data)).toContain(ref.name);
    }
  });
});
