import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { QueueDepth } from './queue-depth';

/** How a job ended, as the worker saw it; the `outcome` label takes only these values. */
export type JobOutcome = 'success' | 'failed' | 'retried' | 'skipped' | 'handed_back' | 'stalled';

/** What the reconciler repaired: the `kind` label takes only these values. */
export type RepairKind = 'runs' | 'sources' | 'schedules_restored' | 'schedules_removed';

/** What landed with a finished sync run (the run's own counters). */
export interface LandedCounts {
  records: number;
  bytes: number;
  invalid: number;
}

export interface MetricsOptions {
  /** Every source_type the spec allows; any other value is counted as `other`. */
  sourceTypes: readonly string[];
  /** Reads queue depths at scrape time; absent, no queue series are reported. */
  queueDepth?: () => Promise<QueueDepth | undefined>;
}

/** Label value for jobs that have no source (sync-all fan-outs) or whose source is not known yet. */
export const NO_SOURCE = 'none';

// Seconds. HTTP answers are expected in milliseconds; jobs take from a second to an hour.
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const JOB_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600];

/**
 * The process's default metrics (CPU, memory, event-loop lag, GC) are made once per process and
 * registered into every container's registry: prom-client starts an event-loop monitor and a GC
 * observer per collectDefaultMetrics call and never stops them, and tests build many containers.
 * This is a private registry, never prom-client's global one.
 */
let processMetrics: Metric[] | undefined;
function defaultMetrics(): Metric[] {
  if (!processMetrics) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    processMetrics = registry.getMetricsAsArray().flatMap(({ name }) => registry.getSingleMetric(name) ?? []);
  }
  return processMetrics;
}

/**
 * Prometheus series for one container: HTTP, jobs, landing, reconciler repairs, queue depth and
 * the process. Every label holds a value from a small fixed set (method, route template, status,
 * queue, state, source type, outcome, kind): never an id, a name, a URL or a secret.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly sourceTypes: Set<string>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_class'>;
  private readonly jobs: Counter<'queue' | 'source_type' | 'outcome'>;
  private readonly jobDuration: Histogram<'queue' | 'source_type' | 'outcome'>;
  private readonly records: Counter<'source_type'>;
  private readonly bytes: Counter<'source_type'>;
  private readonly invalid: Counter<'source_type'>;
  private readonly repairs: Counter<'kind'>;
  private readonly queueJobs: Gauge<'queue' | 'state'>;
  private readonly schedules: Gauge<'queue'>;
  private readonly redisUp: Gauge;
  private rendering?: Promise<string>;

  constructor(private readonly options: MetricsOptions) {
    this.sourceTypes = new Set(options.sourceTypes);
    const registers = [this.registry];
    this.httpRequests = new Counter({
      name: 'sluice_http_requests_total',
      help: 'HTTP requests answered, by method, route template (or "unmatched") and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'sluice_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method, route template and status class (2xx, 4xx...).',
      labelNames: ['method', 'route', 'status_class'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.jobs = new Counter({
      name: 'sluice_jobs_total',
      help: 'Jobs finished by this process, by queue, source type and outcome.',
      labelNames: ['queue', 'source_type', 'outcome'],
      registers,
    });
    this.jobDuration = new Histogram({
      name: 'sluice_job_duration_seconds',
      help: 'Time a job spent in its processor, by queue, source type and outcome.',
      labelNames: ['queue', 'source_type', 'outcome'],
      buckets: JOB_BUCKETS,
      registers,
    });
    this.records = new Counter({
      name: 'sluice_records_landed_total',
      help: 'Records landed in raw_records by successful sync runs, by source type.',
      labelNames: ['source_type'],
      registers,
    });
    this.bytes = new Counter({
      name: 'sluice_bytes_landed_total',
      help: 'UTF-8 bytes of the records read by successful sync runs, by source type.',
      labelNames: ['source_type'],
      registers,
    });
    this.invalid = new Counter({
      name: 'sluice_records_invalid_total',
      help: 'Records quarantined (failed schema_definition or not storable) by successful sync runs.',
      labelNames: ['source_type'],
      registers,
    });
    this.repairs = new Counter({
      name: 'sluice_reconciler_repairs_total',
      help: 'Repairs made by the reconciler: lost runs closed, sources unstuck, schedules restored or removed.',
      labelNames: ['kind'],
      registers,
    });
    this.queueJobs = new Gauge({
      name: 'sluice_queue_jobs',
      help: 'Jobs in each queue by state, read from Redis at scrape time (the same for every process).',
      labelNames: ['queue', 'state'],
      registers,
    });
    this.schedules = new Gauge({
      name: 'sluice_schedules',
      help: 'Job schedulers (one per active source), read from Redis at scrape time; absent when Redis is not.',
      // A label, so that reset() removes the series: an unlabelled gauge would read 0 when unknown.
      labelNames: ['queue'],
      registers,
    });
    this.redisUp = new Gauge({
      name: 'sluice_redis_up',
      help: '1 when Redis answered the scrape-time queue reads in time, else 0.',
      registers,
    });
    for (const metric of defaultMetrics()) this.registry.registerMetric(metric);
    // Zero-valued series exist before the first event, so rate() and alerts see them from the start.
    for (const kind of ['runs', 'sources', 'schedules_restored', 'schedules_removed'] as const)
      this.repairs.inc({ kind }, 0);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A source type as a label: one of the known types, else `other` (labels stay a fixed set). */
  private sourceType(type: string | undefined): string {
    if (type === undefined || type === NO_SOURCE) return NO_SOURCE;
    return this.sourceTypes.has(type) ? type : 'other';
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpDuration.observe({ method, route, status_class: `${Math.floor(status / 100)}xx` }, seconds);
  }

  jobFinished(queue: string, sourceType: string | undefined, outcome: JobOutcome, seconds?: number): void {
    const labels = { queue, source_type: this.sourceType(sourceType), outcome };
    this.jobs.inc(labels);
    if (seconds !== undefined) this.jobDuration.observe(labels, seconds);
  }

  landed(sourceType: string | undefined, counts: LandedCounts): void {
    const labels = { source_type: this.sourceType(sourceType) };
    this.records.inc(labels, counts.records);
    this.bytes.inc(labels, counts.bytes);
    this.invalid.inc(labels, counts.invalid);
  }

  repaired(kind: RepairKind, count: number): void {
    if (count > 0) this.repairs.inc({ kind }, count);
  }

  /**
   * The text exposition, queue depths read first (bounded: see readQueueDepth). Scrapes that arrive
   * while one is being rendered share its answer, so a burst of them costs Redis one read.
   */
  render(): Promise<string> {
    return (this.rendering ??= this.renderNow().finally(() => (this.rendering = undefined)));
  }

  private async renderNow(): Promise<string> {
    if (this.options.queueDepth) {
      const depth = await this.options.queueDepth();
      this.queueJobs.reset();
      this.redisUp.set(depth ? 1 : 0);
      if (depth) {
        for (const [queue, counts] of Object.entries(depth.queues))
          for (const [state, count] of Object.entries(counts)) this.queueJobs.set({ queue, state }, count);
        this.schedules.set({ queue: 'sync' }, depth.schedules);
      } else this.schedules.reset();
    }
    return this.registry.metrics();
  }
}
