// The deployment files under deploy/: every Kubernetes object validated against the Kubernetes API's schemas
// (kubernetes-models, generated from the OpenAPI of Kubernetes and of the Gateway API), with no field the API does not
// know (the field lists of @kubernetes/client-node's models, from the same OpenAPI); the InferencePool against its v1
// API; the objects pointing at each other (selectors, ports, probes on the server's routes, the CLI's flags); and the
// Dockerfile's stages, user and mounts.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import { DockerfileParser } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { INFERENCE_POOL_V1 } from './inference-pool-schema.js';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'k8s');
const CLI = join(ROOT, 'dist', 'lib', 'cli.js');

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } };

const docs: { file: string; obj: Obj }[] = readdirSync(K8S)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((d) => {
      expect(d.errors, `${file}: YAML errors`).to.deep.equal([]);
      return { file, obj: d.toJS() as Obj };
    }),
  );

/** The Kubernetes schema of each kind we ship, and the client-node model with its field list (null: a CRD). */
const KINDS: Record<string, { model: new (o: never) => { validate(): void }; fields: string | null }> = {
  'apps/v1 Deployment': { model: Deployment, fields: 'V1Deployment' },
  'v1 Service': { model: Service, fields: 'V1Service' },
  'policy/v1 PodDisruptionBudget': { model: PodDisruptionBudget, fields: 'V1PodDisruptionBudget' },
  'autoscaling/v2 HorizontalPodAutoscaler': { model: HorizontalPodAutoscaler, fields: 'V2HorizontalPodAutoscaler' },
  'gateway.networking.k8s.io/v1 HTTPRoute': { model: HTTPRoute, fields: null },
};

type AttributeMap = { name: string; baseName: string; type: string }[];

/** The fields in `value` that the API's type `type` does not have, as paths: what a typo in a manifest looks like. */
function unknownFields(value: unknown, type: string, path: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return Object.entries(value as object).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`));
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap }>)[type];
  if (!model?.getAttributeTypeMap || value === null || typeof value !== 'object') return []; // a scalar type
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) =>
    attrs.has(k) ? unknownFields(v, attrs.get(k)!, `${path}.${k}`) : [`${path}.${k}`],
  );
}

const find = (kind: string) => docs.find((d) => d.obj.kind === kind)!.obj as Obj & { spec: never };

describe('deploy/: Kubernetes manifests against the Kubernetes schemas', () => {
  it('has the objects a deployment needs', () => {
    expect(docs.map((d) => d.obj.kind).sort()).to.deep.equal([
      'Deployment',
      'HTTPRoute',
      'HorizontalPodAutoscaler',
      'InferencePool',
      'PodDisruptionBudget',
      'Service',
    ]);
  });

  for (const { file, obj } of docs) {
    const key = `${obj.apiVersion} ${obj.kind}`;
    if (key === 'inference.networking.k8s.io/v1 InferencePool') {
      it(`${file}: ${obj.kind}/${obj.metadata.name} validates against the InferencePool v1 API`, () => {
        const validate = new Ajv({ allErrors: true, strict: true }).compile(INFERENCE_POOL_V1);
        expect(validate(obj), JSON.stringify(validate.errors)).to.equal(true);
      });
      continue;
    }
    it(`${file}: ${obj.kind}/${obj.metadata.name} validates against the ${key} schema`, () => {
      const known = KINDS[key];
      expect(known, `no schema for ${key}`).to.not.equal(undefined);
      new known!.model(obj as never).validate(); // throws, naming the path, on a wrong type, value or missing field
      if (known!.fields !== null) expect(unknownFields(obj, known!.fields, obj.kind)).to.deep.equal([]);
    });
  }

  it('the validation fails on a wrong type, a missing field and a misspelt one (the checks can fail)', () => {
    const deployment = find('Deployment');
    const broken = structuredClone(deployment) as Obj & { spec: { replicas: unknown; template: { spec: object } } };
    broken.spec.replicas = 'two';
    expect(() => new Deployment(broken as never).validate()).to.throw(/replicas/);
    const noSelector = structuredClone(deployment) as Obj & { spec: { selector?: unknown } };
    delete noSelector.spec.selector;
    expect(() => new Deployment(noSelector as never).validate()).to.throw(/selector/);
    const typo = structuredClone(deployment) as Obj & { spec: { template: { spec: { containers: object[] } } } };
    (typo.spec.template.spec.containers[0] as Record<string, unknown>)['readinesProbe'] = {};
    expect(unknownFields(typo, 'V1Deployment', 'Deployment')).to.deep.equal([
      'Deployment.spec.template.spec.containers[0].readinesProbe',
    ]);
    const pool = structuredClone(find('InferencePool')) as Obj & { spec: { targetPorts: unknown } };
    pool.spec.targetPorts = [{ number: 70000 }];
    expect(new Ajv({ strict: true }).compile(INFERENCE_POOL_V1)(pool)).to.equal(false);
  });

  it('the objects agree: selectors, ports, probes on the server routes, GPU requests, the CLI flags', () => {
    const dep = find('Deployment') as unknown as k8s.V1Deployment;
    const pod = dep.spec!.template;
    const labels = pod.metadata!.labels!;
    const c = pod.spec!.containers[0]!;
    const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(matches(dep.spec!.selector.matchLabels!)).to.equal(true);
    expect(matches((find('Service') as unknown as k8s.V1Service).spec!.selector!)).to.equal(true);
    expect(matches((find('PodDisruptionBudget') as unknown as k8s.V1PodDisruptionBudget).spec!.selector!.matchLabels!))
      .to.be.true;
    const pool = find('InferencePool') as unknown as {
      spec: { selector: { matchLabels: Record<string, string> }; targetPorts: { number: number }[] };
    };
    expect(matches(pool.spec.selector.matchLabels)).to.equal(true);
    expect(pool.spec.targetPorts.map((p) => p.number)).to.deep.equal(c.ports!.map((p) => p.containerPort));
    const route = find('HTTPRoute') as unknown as {
      spec: { rules: { backendRefs: { kind: string; name: string }[] }[] };
    };
    expect(route.spec.rules[0]!.backendRefs[0]).to.include({ kind: 'InferencePool', name: 'mini-vllm' });
    const hpa = find('HorizontalPodAutoscaler') as unknown as k8s.V2HorizontalPodAutoscaler;
    expect(hpa.spec!.scaleTargetRef).to.include({ kind: 'Deployment', name: dep.metadata!.name });
    expect(hpa.spec!.metrics![0]!.pods!.metric.name).to.equal('vllm_num_requests_waiting');
    // Probes: readiness on /ready, liveness and startup on /live (lib/server/server.ts serves both).
    expect(c.readinessProbe!.httpGet!.path).to.equal('/ready');
    expect(c.livenessProbe!.httpGet!.path).to.equal('/live');
    expect(c.startupProbe!.httpGet!.path).to.equal('/live');
    expect(c.resources!.requests!['nvidia.com/gpu']).to.equal('1');
    expect(pod.spec!.securityContext!.runAsNonRoot).to.equal(true);
    expect(c.volumeMounts!.find((m) => m.mountPath === '/models')!.readOnly).to.equal(true);
    // Every flag the container passes is one `mini-vllm serve` has.
    const help = spawnSync(process.execPath, [CLI, 'serve', '--help'], { encoding: 'utf8' }).stdout;
    for (const flag of c.args!.filter((a) => a.startsWith('--'))) expect(help, flag).to.include(`${flag} `);
    // The shutdown timeout fits in the grace period, with the preStop pause.
    const timeout = Number(c.args![c.args!.indexOf('--shutdown-timeout') + 1]);
    expect(timeout + c.lifecycle!.preStop!.sleep!.seconds).to.be.below(pod.spec!.terminationGracePeriodSeconds!);
  });
});

describe('deploy/Dockerfile', () => {
  const file = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
  const df = DockerfileParser.parse(file);
  const froms = df.getFROMs();
  const last = froms[froms.length - 1]!;
  const finalStage = df.getInstructions().filter((i) => i.getRange().start.line >= last.getRange().start.line);
  const args = (kw: string) =>
    finalStage.filter((i) => i.getKeyword() === kw).map((i) => i.getArgumentsContent() ?? '');

  it('builds in a CUDA devel stage and runs on the CUDA runtime image', () => {
    const build = froms.find((f) => f.getBuildStage() === 'build')!;
    expect(`${build.getImageName()}:${build.getImageTag()}`).to.match(/^nvidia\/cuda:.*-devel-/);
    expect(`${last.getImageName()}:${last.getImageTag()}`).to.match(/^nvidia\/cuda:.*-runtime-/);
    expect(last.getBuildStage()).to.equal(null);
    // The build stage's sources exist in the repository.
    const copies = df
      .getCOPYs()
      .filter((c) => !c.getFlags().some((f) => f.getName() === 'from'))
      .flatMap((c) =>
        c
          .getArguments()
          .slice(0, -1)
          .map((a) => a.getValue()),
      );
    for (const src of copies) expect(existsSync(join(ROOT, src)), src).to.equal(true);
  });

  it('runs as a non-root user, with the model mounted, not baked in, and probes /live', () => {
    const user = args('USER');
    expect(user).to.have.length(1);
    expect(user[0]).to.match(/^[1-9]\d*(:\d+)?$/);
    expect(finalStage.findIndex((i) => i.getKeyword() === 'USER')).to.be.below(
      finalStage.findIndex((i) => i.getKeyword() === 'ENTRYPOINT'),
    );
    expect(args('VOLUME').join(' ')).to.include('/models');
    for (const c of df.getCOPYs()) expect(c.getArgumentsContent()).to.not.match(/\.(gguf|safetensors|bin)\b|models/);
    expect(args('ENTRYPOINT')[0]).to.include('"serve"');
    expect(args('HEALTHCHECK')[0]).to.include('/live');
    expect(args('EXPOSE')).to.deep.equal(['8000']);
  });
});
