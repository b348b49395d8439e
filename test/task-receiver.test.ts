// A task runs with the caller's `this`. When the function uses `this` (a method), a defined `this` is an input
// named "this": two objects never share an entry, an object that cannot be hashed is refused like any input,
// and `ignoredInputs: "this"` leaves it out. Functions that do not use `this`, and arrow functions, ignore it.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, explain, hashKey, openStore, task, type Explanation } from "../src/index.js";
import { tempDir } from "./helpers.js";

const root = tempDir("cachet-receiver-");
const store = await openStore({ cacheDir: root.path });
after(async () => {
  await store.close();
  root.cleanup();
});

describe("the caller's this", () => {
  test("task(options, obj.method) assigned as a method runs with the object: no NaN, no cross-talk", async () => {
    let runs = 0;
    class Adder {
      constructor(readonly base: number) {}
      async add(x: number): Promise<number> {
        runs++;
        return this.base + x;
      }
      [hashKey]() {
        return { base: this.base };
      }
    }
    const cachedAdd = task({ name: "adder-add", store }, Adder.prototype.add);
    const one = Object.assign(new Adder(1), { cachedAdd });
    const ten = Object.assign(new Adder(10), { cachedAdd });
    assert.equal(await one.cachedAdd(5), 6);
    assert.equal(await ten.cachedAdd(5), 15, "another object's result is never returned");
    assert.equal(await one.cachedAdd(5), 6);
    assert.equal(await new Adder(1).add.call(new Adder(1), 0), 1);
    assert.equal(runs, 3, "the third call was a hit");
    // explain with a receiver: explain.call(receiver, task, ...args) (cast: TypeScript cannot infer through .call of a generic).
    const explainWith = explain as (this: unknown, fn: unknown, ...args: unknown[]) => Promise<Explanation>;
    const explanation = await explainWith.call(ten, cachedAdd, 5);
    assert.equal(explanation.wouldHit, true);
  });

  test("a this that cannot be hashed is refused naming the input, and ignoredInputs: \"this\" leaves it out", async () => {
    class Service {
      constructor(readonly prefix: string) {}
      async greet(name: string): Promise<string> {
        return `${this.prefix} ${name}`;
      }
    }
    const service = new Service("hello");
    const strict = task({ name: "service-greet", store }, service.greet);
    await assert.rejects(strict.call(service, "ada"), /input "this": cannot hash an instance of Service/);
    let runs = 0;
    const lenient = task({ name: "service-greet-ignoring", cache: new Cache({ ignoredInputs: "this" }), store }, async function greet(this: Service, name: string) {
      runs++;
      return `${this.prefix} ${name}`;
    });
    assert.equal(await lenient.call(service, "ada"), "hello ada");
    assert.equal(await lenient.call(new Service("hi"), "ada"), "hello ada", "the caller said this does not matter");
    assert.equal(runs, 1);
  });

  test("called without an object, a method sees undefined (and the key has no this)", async () => {
    const method = task({ name: "loose-method", store }, async function loose(this: unknown, x: number) {
      return this === undefined ? x : -1;
    });
    assert.equal(await method(4), 4);
  });

  test("a function that does not use this, or an arrow function, ignores the caller's this", async () => {
    let runs = 0;
    const plain = task({ name: "no-this", store }, async function double(x: number) {
      runs++;
      return x * 2;
    });
    const arrow = task({ name: "arrow-this", store }, async (x: number) => {
      runs++;
      return x * 3;
    });
    const a = { plain, arrow, socket: new (class Socket {})() };
    const b = { plain, arrow, socket: new (class Socket {})() };
    assert.equal(await a.plain(2), 4);
    assert.equal(await b.plain(2), 4);
    assert.equal(await a.arrow(2), 6);
    assert.equal(await b.arrow(2), 6);
    assert.equal(runs, 2, "this is not an input, so unhashable objects are fine and calls hit");
  });
});
