/**
 * The config of a private nginx (Debian's package), for the tests and the benchmark: one worker, in
 * the foreground, every file it writes (pid, error log, temp folders) inside `dir`, one server that
 * answers every request with `answer` and a newline. Nothing of the system's nginx setup is read.
 */
export function privateNginxConfig(
  dir: string,
  o: {
    /** Lines first in the main context (comments, `user`, `master_process`). */
    top?: readonly string[];
    workerConnections: number;
    /** Lines first in the `http` block (logging). */
    http: readonly string[];
    /** The `listen` directive's value, e.g. "127.0.0.1:8080 proxy_protocol". */
    listen: string;
    /** The body, in nginx's syntax (variables allowed, no double quotes). */
    answer: string;
  },
): string {
  return `${[...(o.top ?? []), 'worker_processes 1;', 'daemon off;'].join('\n')}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${o.workerConnections}; }
http {
${o.http.map((l) => `  ${l}\n`).join('')}  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${o.listen};
    location / {
      default_type text/plain;
      return 200 "${o.answer}\\n";
    }
  }
}
`;
}
