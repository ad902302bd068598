// Metrics as every service reports them, and the one renderer for /-/metrics (Prometheus text
// exposition format 0.0.4).

export interface Sample {
  /** Appended to the family's name: "_bucket", "_sum", "_count" for a histogram. */
  suffix?: string;
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  samples: Sample[];
}

/** Counts by key; every key of the declared list is reported, also at 0. */
export class Tally<K extends string | number> {
  private readonly counts = new Map<K, number>();

  add(key: K, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }

  get(key: K): number {
    return this.counts.get(key) ?? 0;
  }

  /** Keys seen, in the order first seen. */
  keys(): K[] {
    return [...this.counts.keys()];
  }

  /** One sample per key of `keys`, labelled `label`. */
  samples(label: string, keys: readonly K[]): Sample[] {
    return keys.map((k) => ({ labels: { [label]: String(k) }, value: this.get(k) }));
  }
}

export function counter(name: string, help: string, samples: Sample[] | number): MetricFamily {
  return { name, type: 'counter', help, samples: typeof samples === 'number' ? [{ value: samples }] : samples };
}

export function gauge(name: string, help: string, samples: Sample[] | number): MetricFamily {
  return { name, type: 'gauge', help, samples: typeof samples === 'number' ? [{ value: samples }] : samples };
}

/** A histogram of durations in seconds, cumulative buckets as Prometheus wants them. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    let i = this.bounds.findIndex((le) => value <= le);
    if (i < 0) i = this.bounds.length;
    this.counts[i] = (this.counts[i] as number) + 1;
  }

  family(name: string, help: string): MetricFamily {
    const samples: Sample[] = [];
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += this.counts[i] as number;
      samples.push({ suffix: '_bucket', labels: { le: String(le) }, value: cumulative });
    });
    cumulative += this.counts[this.bounds.length] as number;
    samples.push({ suffix: '_bucket', labels: { le: '+Inf' }, value: cumulative });
    samples.push({ suffix: '_sum', value: this.sum });
    samples.push({ suffix: '_count', value: cumulative });
    return { name, type: 'histogram', help, samples };
  }
}

/** Label values are the server's own words (reasons, outcomes), but escape them all the same. */
const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = s.labels ? Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`) : [];
      lines.push(`${f.name}${s.suffix ?? ''}${labels.length ? `{${labels.join(',')}}` : ''} ${s.value}`);
    }
  }
  return lines.join('\n') + '\n';
}
