// The client and worker processes of a chaos run: spawned with tsx like the run itself, their
// stdout read line by line as protocol messages, their stderr kept in a log file per process.
// Workers are supervised: one that dies (killed by the run, or on its own) is started again.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { readMessage, type Message } from './protocol.ts';

export interface Spawned {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnScript(options: {
  script: string;
  env: Record<string, string>;
  logFile: string;
  onMessage: (message: Message) => void;
  onBadLine: (line: string, error: unknown) => void;
}): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', options.script], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const log: WriteStream = createWriteStream(options.logFile, { flags: 'a' });
  child.stderr!.pipe(log);
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    try {
      options.onMessage(readMessage(line));
    } catch (error) {
      options.onBadLine(line, error);
    }
  });
  // 'close' comes after the child's stdout has ended, so every line it wrote has been read
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, exited };
}

/** A worker slot: one worker process at a time, restarted whenever it dies while the run wants it. */
export class WorkerSlot {
  incarnation = 0;
  current: Spawned | undefined;
  ready = false;
  /** When the current incarnation said it was running (epoch ms). */
  readySince = 0;
  /** Deaths the run did not cause (each followed by a restart). */
  unexpectedExits: { incarnation: number; code: number | null; signal: string | null }[] = [];
  private wanted = true;
  private killedByRun = false;
  private restartAfter_ms = 0;

  constructor(
    readonly index: number,
    private readonly start: (slot: WorkerSlot) => Spawned,
  ) {}

  launch(): void {
    this.incarnation += 1;
    this.ready = false;
    this.killedByRun = false;
    const spawned = this.start(this);
    this.current = spawned;
    void spawned.exited.then(({ code, signal }) => {
      if (this.current !== spawned) return;
      this.current = undefined;
      if (!this.wanted) return;
      if (!this.killedByRun) this.unexpectedExits.push({ incarnation: this.incarnation, code, signal });
      setTimeout(() => this.wanted && this.current === undefined && this.launch(), this.killedByRun ? this.restartAfter_ms : 200);
    });
  }

  markReady(): void {
    this.ready = true;
    this.readySince = Date.now();
  }

  /** Running, and for at least `for_ms`: it has had time to heartbeat. */
  settled(for_ms: number): boolean {
    return this.alive && this.ready && Date.now() - this.readySince >= for_ms;
  }

  get alive(): boolean {
    return this.current !== undefined && this.current.child.exitCode === null && this.current.child.signalCode === null;
  }

  /** SIGKILL now: no graceful stop, no cleanup; the slot starts it again `restartAfter_ms` later. */
  kill(restartAfter_ms: number): boolean {
    if (!this.alive) return false;
    this.killedByRun = true;
    this.restartAfter_ms = restartAfter_ms;
    return this.current!.child.kill('SIGKILL');
  }

  /** SIGTERM and wait: running jobs finish, the worker leaves. Not restarted. */
  async stop(timeout_ms: number): Promise<void> {
    this.wanted = false;
    const spawned = this.current;
    if (spawned === undefined || !this.alive) return;
    spawned.child.kill('SIGTERM');
    const timer = setTimeout(() => spawned.child.kill('SIGKILL'), timeout_ms);
    await spawned.exited;
    clearTimeout(timer);
  }
}

export const logPath = (directory: string, name: string) => path.join(directory, `${name}.log`);
