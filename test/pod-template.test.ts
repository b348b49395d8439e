import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { hashValue } from "../src/hash/index.js";
import { PodTemplateError } from "../src/task/errors.js";
import { PodTemplate } from "../src/task/pod-template.js";

const podSpec = {
  containers: [
    { name: "primary", image: "app:1", resources: { limits: { cpu: "2", memory: "4Gi" }, requests: { cpu: "1" } } },
    { name: "sidecar", image: "proxy:3" },
  ],
  nodeSelector: { "cloud.google.com/gke-accelerator": "nvidia-tesla-t4" },
  tolerations: [{ key: "gpu", operator: "Exists", effect: "NoSchedule" }],
};

describe("PodTemplate", () => {
  test("versionHash is stable under key order, at every depth", () => {
    const a = new PodTemplate({ podSpec, labels: { team: "ml", env: "prod" }, annotations: { owner: "a", cost: "b" } });
    const b = new PodTemplate({
      annotations: { cost: "b", owner: "a" },
      labels: { env: "prod", team: "ml" },
      podSpec: {
        tolerations: [{ effect: "NoSchedule", operator: "Exists", key: "gpu" }],
        nodeSelector: { "cloud.google.com/gke-accelerator": "nvidia-tesla-t4" },
        containers: [
          { resources: { requests: { cpu: "1" }, limits: { memory: "4Gi", cpu: "2" } }, image: "app:1", name: "primary" },
          { image: "proxy:3", name: "sidecar" },
        ],
      },
    });
    assert.equal(a.versionHash(), b.versionHash());
    assert.match(a.versionHash(), /^[0-9a-f]{64}$/);
  });

  test("every field counts, and list order does", () => {
    const reference = new PodTemplate({ podSpec, labels: { team: "ml" } }).versionHash();
    const variants = [
      new PodTemplate({ podSpec, labels: { team: "ml" }, primaryContainerName: "main" }),
      new PodTemplate({ podSpec, labels: { team: "ai" } }),
      new PodTemplate({ podSpec, labels: { team: "ml" }, annotations: { a: "b" } }),
      new PodTemplate({ podSpec: { ...podSpec, nodeSelector: {} }, labels: { team: "ml" } }),
      new PodTemplate({ podSpec: { ...podSpec, containers: [...podSpec.containers].reverse() }, labels: { team: "ml" } }),
      new PodTemplate({ labels: { team: "ml" } }),
    ];
    for (const variant of variants) assert.notEqual(variant.versionHash(), reference);
  });

  test("defaults: primary container \"primary\", empty labels and annotations", () => {
    const template = new PodTemplate();
    assert.equal(template.primaryContainerName, "primary");
    assert.deepEqual(template.labels, {});
    assert.deepEqual(template.annotations, {});
    assert.equal(template.podSpec, undefined);
    assert.equal(template.versionHash(), new PodTemplate({ primaryContainerName: "primary" }).versionHash());
  });

  test("an empty primary container name is refused", () => {
    for (const name of ["", "   "]) {
      assert.throws(() => new PodTemplate({ primaryContainerName: name }), (e: unknown) =>
        e instanceof PodTemplateError && e.code === "CACHET_POD_TEMPLATE" && /"primaryContainerName" must be a non-empty string/.test(e.message));
    }
    assert.throws(() => new PodTemplate({ primaryContainerName: 5 as never }), /got a number \(5\)/);
  });

  test("the template is an immutable copy; undefined properties are dropped like JSON drops them", () => {
    const input = { containers: [{ name: "primary", image: "app:1" }] };
    const template = new PodTemplate({ podSpec: input });
    const before = template.versionHash();
    input.containers[0]!.image = "app:2";
    assert.equal(template.versionHash(), before);
    assert.equal((template.podSpec!.containers as Array<{ image: string }>)[0]!.image, "app:1");
    assert.ok(Object.isFrozen(template) && Object.isFrozen(template.podSpec) && Object.isFrozen(template.labels));
    const withUndefined = new PodTemplate({ podSpec: { containers: [{ name: "primary", image: "app:1", command: undefined }] } });
    assert.equal(withUndefined.versionHash(), before);
  });

  test("non-JSON pod specs and bad labels are refused, naming where", () => {
    assert.throws(() => new PodTemplate({ podSpec: { containers: [{ started: new Date() }] } }), (e: unknown) =>
      e instanceof PodTemplateError && /podSpec\.containers\[0\]\.started/.test(e.message) && /an instance of Date/.test(e.message));
    assert.throws(() => new PodTemplate({ podSpec: { replicas: Number.POSITIVE_INFINITY } }), /podSpec\.replicas must be a finite number/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => new PodTemplate({ podSpec: cyclic }), /a cycle/);
    assert.throws(() => new PodTemplate({ podSpec: [] as never }), /"podSpec" must be a plain object, got an array/);
    assert.throws(() => new PodTemplate({ labels: { team: 1 } as never }), /"labels.team" must be a string/);
    assert.throws(() => new PodTemplate({ annotation: {} } as never), /unknown option "annotation"/);
  });

  test("a PodTemplate can be hashed as a task input", () => {
    assert.equal(hashValue(new PodTemplate({ labels: { a: "1" } })), hashValue(new PodTemplate({ labels: { a: "1" } })));
    assert.notEqual(hashValue(new PodTemplate({ labels: { a: "1" } })), hashValue(new PodTemplate({ labels: { a: "2" } })));
  });
});
