#!/usr/bin/env node
// @ts-check
// A throwaway streaming standby of the private cluster, for the tests that must do to a standby what
// the shared one of `npm test` must not suffer (promote it):
//   node scripts/standby.mjs start PORT NAME    prints its server URL (a data directory .local/NAME)
//   node scripts/standby.mjs promote NAME       promotes it to a primary of its own (a new timeline)
//   node scripts/standby.mjs stop NAME          stops it and removes its data directory
import { rmSync } from "node:fs";
import path from "node:path";
import { LOCAL_DIR, promoteStandby, startStandby, stopStandby } from "./lib/cluster.mjs";

const [command, ...rest] = process.argv.slice(2);
if (command === "start") {
  const [port, name] = rest;
  const { standby, reason } = startStandby({ port: Number(port), name });
  if (!standby) {
    console.error(`no standby: ${reason}`);
    process.exit(1);
  }
  console.log(standby.url);
} else if (command === "promote") {
  promoteStandby(path.join(LOCAL_DIR, rest[0]));
} else if (command === "stop") {
  stopStandby(path.join(LOCAL_DIR, rest[0]));
  rmSync(path.join(LOCAL_DIR, rest[0]), { recursive: true, force: true });
} else {
  console.error("usage: node scripts/standby.mjs start PORT NAME | promote NAME | stop NAME");
  process.exit(2);
}
