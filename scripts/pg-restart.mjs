#!/usr/bin/env node
// @ts-check
// Restarts the private cluster; the multi-device simulation uses it to inject a server restart.
import { restartCluster } from "./lib/cluster.mjs";
restartCluster();
