/**
 * deploy/kubernetes/recompute: the Indexed Job of sharded recalculation validates against the
 * Kubernetes schema with no unknown fields; its N pods get `--shard I/N` with I their completion
 * index, in arguments the CLI accepts for every I; and it runs with the workers' configuration
 * and credentials, like the migrate Job, under the same image mapping.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { parseAllDocuments } from 'yaml';
import { buildProgram } from '../../../src/cli';
import { REPO } from './dockerfile-model';
import { declarationOf, unknownFields } from './k8s-strict';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const load = (...path: string[]): Obj[] =>
  parseAllDocuments(readFileSync(join(REPO, 'deploy', 'kubernetes', ...path), 'utf8'), { version: '1.1' }).map((d) => {
    if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join('; '));
    return d.toJS() as Obj;
  });

const [job] = load('recompute', 'recompute-job.yaml') as [Obj];
const [kustomization] = load('recompute', 'kustomization.yaml') as [Obj];
const [mainKustomization] = load('kustomization.yaml') as [Obj];
const [migrateJob] = load('migrate-job.yaml') as [Obj];
const [configMap] = load('configmap.yaml') as [Obj];
const container = job.spec.template.spec.containers[0] as Obj;

/** The arguments of pod `index`, as the kubelet expands $(VAR) from the container's env. */
function argsOf(index: number): string[] {
  return (container.args as string[]).map((arg) => arg.replace(/\$\(JOB_COMPLETION_INDEX\)/g, String(index)));
}

/** Parses `args` with the real CLI definition; returns the recompute command's options. */
function parse(args: string[]): Obj {
  const [name, ...rest] = args;
  const command = buildProgram().commands.find((c) => c.name() === name);
  if (!command) throw new Error(`no command ${name}`);
  const { operands, unknown } = command.parseOptions(rest);
  expect({ operands, unknown }).toEqual({ operands: [], unknown: [] });
  return command.opts();
}

describe('deploy/kubernetes/recompute', () => {
  it('is a valid batch/v1 Job, no unknown fields, applied by its own kustomization with the stack’s image and namespace', () => {
    expect(() => new Job(job as ConstructorParameters<typeof Job>[0]).validate()).not.toThrow();
    expect(unknownFields(job, declarationOf('kubernetes-models', 'batch/v1/Job'))).toEqual([]);
    expect(kustomization.resources).toEqual(['recompute-job.yaml']);
    expect(kustomization.images).toEqual(mainKustomization.images);
    expect(kustomization.namespace).toBe(mainKustomization.namespace);
    expect(mainKustomization.resources).not.toContain('recompute/recompute-job.yaml');
  });

  it('runs N indexed pods, pod I recalculating shard I/N', () => {
    expect(job.spec.completionMode).toBe('Indexed');
    const n = job.spec.completions as number;
    expect(n).toBeGreaterThan(1);
    expect(job.spec.parallelism).toBe(n);
    expect(container.args).toContain(`$(JOB_COMPLETION_INDEX)/${n}`);
    // $(VAR) is expanded only from the container's env: the index must be declared there.
    expect(container.env).toEqual([
      { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
    ]);
    for (let index = 0; index < n; index += 1) {
      const options = parse(argsOf(index));
      expect(options).toMatchObject({ sink: 'clickhouse', shard: { index, count: n } });
      expect(typeof options.since).toBe('number');
    }
    // The same arguments with an index outside 0 … N-1 are refused (N kept in one place would not be).
    expect(() => parse(argsOf(n))).toThrow(/expected I\/N/);
  });

  it('runs with the workers’ configuration and credentials, as the migrate Job does, and stops cleanly on SIGTERM', () => {
    expect(container.image).toBe(migrateJob.spec.template.spec.containers[0].image);
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    expect(container.volumeMounts).toEqual(migrateJob.spec.template.spec.containers[0].volumeMounts);
    expect(job.spec.template.spec.volumes).toEqual(migrateJob.spec.template.spec.volumes);
    expect(container.securityContext).toEqual(migrateJob.spec.template.spec.containers[0].securityContext);
    expect(job.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
  });
});
