import { parentPort, workerData } from 'node:worker_threads';
import { RamBlock, type RamBlockShared } from './ram-block.js';
import { digestBlocksHere } from './digest.js';

parentPort!.postMessage(digestBlocksHere((workerData as RamBlockShared[]).map((shared) => new RamBlock(shared))));
