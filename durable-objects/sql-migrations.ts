/**
 * Schema migrations for a Durable Object's SQLite storage. Each object
 * migrates itself in its constructor, under `blockConcurrencyWhile`, so no
 * request ever sees a half-migrated schema. Migrations are append-only:
 * index = version.
 */

/** Applies every migration newer than the object's recorded version, in order. */
export function migrateSql(sql: SqlStorage, migrations: readonly string[]): void {
  sql.exec('create table if not exists _schema_version (version integer not null)');
  const row = sql.exec<{ version: number }>('select version from _schema_version').toArray()[0];
  const current = row?.version ?? 0;
  if (current > migrations.length) {
    // Code older than the data: refuse rather than guess at a schema.
    throw new Error(`storage schema v${current} is newer than this code (v${migrations.length})`);
  }
  for (let v = current; v < migrations.length; v++) sql.exec(migrations[v]!);
  if (!row) sql.exec('insert into _schema_version (version) values (?)', migrations.length);
  else if (current !== migrations.length) sql.exec('update _schema_version set version = ?', migrations.length);
}
