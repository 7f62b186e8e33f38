import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { confined } from './confined-path.ts';

/** What a backup still owes an environment: kept on disk so that an agent killed mid-way pays it at restart. */
export interface CaptureDebt {
  environmentId: string;
  snapshotId: string;
  /** The services were stopped for the capture and must be started again. */
  restart: boolean;
  /** Post hooks must run. */
  postHooks: boolean;
  /** Volumes whose file-system snapshots may exist (noted before they are made): to be removed. */
  snapshots?: string[];
}

export class CaptureJournal {
  constructor(private readonly root: string) {}

  private path(environmentId: string): string {
    return confined(this.root, `${environmentId}.json`);
  }

  async note(debt: CaptureDebt): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const path = this.path(debt.environmentId);
    await writeFile(`${path}.tmp`, JSON.stringify(debt));
    await rename(`${path}.tmp`, path);
  }

  async settle(environmentId: string): Promise<void> {
    await rm(this.path(environmentId), { force: true });
  }

  async outstanding(): Promise<CaptureDebt[]> {
    const files = await readdir(this.root).catch(() => [] as string[]);
    return Promise.all(
      files
        .filter((f) => f.endsWith('.json'))
        .map(async (f) => JSON.parse(await readFile(confined(this.root, f), 'utf8')) as CaptureDebt),
    );
  }
}
