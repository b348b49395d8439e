// A reporter for Node's test runner (used by run-tests.mjs beside the spec reporter): writes one JSON line per
// finished test or suite, with what the closing summary needs — pass or fail, skip reason, todo, whether it is a
// suite, its nesting and file. Node's own summary counts neither a skipped suite nor the tests in it; this one does.
export default async function* testEvents(source) {
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const { name, nesting, file, skip, todo, details } = event.data;
    yield `${JSON.stringify({
      passed: event.type === "test:pass",
      name,
      nesting,
      file: file ?? null,
      skip: skip === undefined || skip === false ? null : skip === true ? "" : String(skip),
      todo: todo === undefined || todo === false ? null : todo === true ? "" : String(todo),
      suite: details?.type === "suite",
    })}\n`;
  }
}
