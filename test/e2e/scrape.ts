/** Helpers of the metrics tests: one request per connection, and reading one sample of an exposition. */
import { get as httpGet } from 'node:http';

/** GET / on a connection of its own (no keep-alive: one request, one tunneled connection). */
export function getOnce(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
