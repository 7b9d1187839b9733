// The guide quotes its SQL from the files the other tests run, and may not drift from them: every
// ```sql block of docs/clients/flutter-drift.md that a `<!-- from flutter-drift/x.sql -->` line
// introduces is a verbatim part of that file, and every named statement of the files is in the guide
// (by its name, or by the method name Drift generates for it).
import assert from "node:assert/strict";
import { FILES, readSqlFile, splitSql } from "./_sqlite.ts";

const GUIDE = new URL("../../flutter-drift.md", import.meta.url);
const guide = Deno.readTextFileSync(GUIDE);

/** Each fenced block with the line before it. */
function blocks(text: string) {
  const out: { marker: string; lang: string; body: string; line: number }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^(\s*)```(\w*)\s*$/);
    if (!open) continue;
    let j = i + 1;
    while (j < lines.length && lines[j].trim() !== "```") j++;
    const indent = open[1].length;
    out.push({
      marker: (lines.slice(0, i).reverse().find((l) => l.trim() !== "") ?? "").trim(),
      lang: open[2],
      body: lines.slice(i + 1, j).map((l) => l.slice(indent)).join("\n"),
      line: i + 1,
    });
    i = j;
  }
  return out;
}

Deno.test("every SQL block the guide quotes from a file is a verbatim part of that file", () => {
  const quoted = blocks(guide).filter((b) => b.marker.startsWith("<!-- from "));
  assert.ok(quoted.length >= 10, `the guide quotes its files (${quoted.length} blocks)`);
  for (const b of quoted) {
    const m = b.marker.match(/^<!-- from flutter-drift\/([\w.]+\.sql) -->$/);
    assert.ok(m && FILES.includes(m[1]), `line ${b.line}: ${b.marker} names one of ${FILES.join(", ")}`);
    assert.equal(b.lang, "sql", `line ${b.line}: a quoted block is SQL`);
    assert.ok(b.body.trim().length > 0, `line ${b.line}: the block is not empty`);
    assert.ok(
      readSqlFile(m[1]).includes(b.body),
      `line ${b.line}: the block differs from ${m[1]}; quote the file as it is:\n${b.body}`,
    );
  }
});

Deno.test("the guide's SQL blocks that quote no file are the app's own, never the sync schema's", () => {
  const own = blocks(guide).filter((b) => b.lang === "sql" && !b.marker.startsWith("<!-- from "));
  for (const b of own) {
    assert.ok(
      !/\bsync_\w+\b/.test(b.body.replace(/\bsync_local\b/g, "")),
      `line ${b.line}: SQL of the sync schema is quoted from its file`,
    );
  }
});

Deno.test("every named statement of the files is in the guide", () => {
  const camel = (s: string) => s.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
  for (const file of FILES) {
    for (const name of splitSql(readSqlFile(file)).statements.keys()) {
      assert.ok(guide.includes(name) || guide.includes(camel(name)), `${file}: ${name} is not in the guide`);
    }
  }
});
