import { PermanentSyncError } from '../connector';
import type { HttpClient, HttpGetInit } from '../kit/http/http-client';
import { toHttpSyncError } from '../kit/http/http-status-error';
import type { ApiSettings } from './api-settings';
import { readDotPath } from './dot-path';
import type { Watermark } from './incremental-watermark';

export interface ApiPage {
  number: number;
  records: unknown[];
  /** The request that returned the page (its records' provenance). */
  url: URL;
}

/** The first request of a sync: the source URL, with the watermark and the first page number if configured. */
export function firstPageUrl(base: URL, settings: ApiSettings, since: Watermark | undefined): URL {
  const url = new URL(base);
  if (settings.incremental && since !== undefined)
    url.searchParams.set(settings.incremental.param, String(since));
  const p = settings.pagination;
  if (p.type === 'page') {
    url.searchParams.set(p.param, String(p.start));
    if (p.size_param && p.size) url.searchParams.set(p.size_param, String(p.size));
  }
  return url;
}

/**
 * The array of records in a page body (`records_path`, or the body itself). Undefined when the
 * path is missing or null; a non-array there is a configuration error.
 */
export function extractRecords(body: unknown, recordsPath: string | undefined): unknown[] | undefined {
  const found = readDotPath(body, recordsPath);
  if (found === undefined || found === null) return undefined;
  if (!Array.isArray(found))
    throw new PermanentSyncError(
      recordsPath
        ? `records_path "${recordsPath}" is not an array in the response`
        : 'the response body is not an array: set metadata.records_path to the array of records',
      'invalid_config',
    );
  return found;
}

/**
 * Fetches pages in order until the source says there are no more: a null, missing or empty link or
 * cursor, an empty page, a short page (page pagination with a size). A listing past the max_pages
 * cap fails (too_large) and so does a link back to a page already read (protocol): both permanent.
 */
export async function* fetchPages(
  http: HttpClient,
  base: URL,
  settings: ApiSettings,
  init: HttpGetInit,
  since: Watermark | undefined,
): AsyncGenerator<ApiPage> {
  const seen = new Set<string>();
  let url: URL | undefined = firstPageUrl(base, settings, since);
  for (let number = 1; url; number++) {
    // A listing longer than the cap fails rather than lands a silent prefix of itself as a success
    // (an API answering 10^6 pages would otherwise hold a worker for hours).
    if (number > settings.maxPages)
      throw new PermanentSyncError(
        `the source offers more than max_pages (${settings.maxPages}) pages; the listing was not read whole: raise metadata.max_pages (at most 100000) or sync incrementally`,
        'too_large',
      );
    seen.add(url.href);
    let page: { url: URL; body: unknown };
    try {
      page = await http.getJson(url, init);
    } catch (err) {
      throw toHttpSyncError(err, `read page ${number}`, url);
    }
    const records = extractRecords(page.body, settings.recordsPath);
    if (!records) {
      // A listing that ends with a null or missing array is over; page 1 without one is misconfigured.
      if (number === 1)
        throw new PermanentSyncError(
          `records_path "${settings.recordsPath ?? ''}" was not found in the first page`,
          'invalid_config',
        );
      return;
    }
    yield { number, records, url };
    if (!records.length) return;
    url = nextPageUrl(settings, page.body, page.url, base, since, number, records.length);
    // A next link (or cursor) leading back to a page already read would loop forever.
    if (url && seen.has(url.href))
      throw new PermanentSyncError(
        `pagination loop: page ${number} links to a page already read (${url.href === page.url.href ? 'itself' : `page ${[...seen].indexOf(url.href) + 1}`}); the source's next link or cursor does not advance`,
        'protocol',
      );
  }
}

/** Where the next page is, or undefined when this was the last. */
export function nextPageUrl(
  settings: ApiSettings,
  body: unknown,
  pageUrl: URL,
  base: URL,
  since: Watermark | undefined,
  number: number,
  count: number,
): URL | undefined {
  const p = settings.pagination;
  switch (p.type) {
    case 'none':
      return undefined;
    case 'next_url': {
      const link = readDotPath(body, p.path);
      if (typeof link !== 'string' || !link.trim()) return undefined;
      // Relative links resolve against the page that carried them (after any redirect).
      const next = new URL(link.trim(), pageUrl);
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new PermanentSyncError(
          `the next page link is not an http(s) URL (${next.protocol})`,
          'protocol',
        );
      next.hash = '';
      return next;
    }
    case 'cursor': {
      const cursor = readDotPath(body, p.path);
      if ((typeof cursor !== 'string' && typeof cursor !== 'number') || cursor === '') return undefined;
      const next = firstPageUrl(base, settings, since);
      next.searchParams.set(p.param, String(cursor));
      return next;
    }
    case 'page': {
      if (p.size && count < p.size) return undefined;
      const next = firstPageUrl(base, settings, since);
      next.searchParams.set(p.param, String(p.start + number));
      return next;
    }
  }
}
