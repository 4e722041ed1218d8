// DuckDB side of bench/compare.sh, run with Node.js and @duckdb/node-api:
//
//   node duckdb.mjs copy BODY.json OUT.parquet   the JSON-to-Parquet work
//   node duckdb.mjs same A.parquet B.parquet     exit 0 if both hold the same rows
//   node duckdb.mjs rows FILE.parquet            print the row count
//
// The copy reads the whole body as one JSON document (that is how
// read_json works on a top-level object) with every field typed as
// VARCHAR, then converts each column the way mspo-spoc does (TRY_CAST,
// trimmed, the coordinate ranges, invalid values null, records without an
// id dropped), so both tools do the same work and their outputs can be
// compared row for row.
import { DuckDBInstance } from '@duckdb/node-api';
import { statSync } from 'node:fs';

const [mode, a, b] = process.argv.slice(2);
const quote = (s) => `'${s.replaceAll("'", "''")}'`;

const fields = [
  'entity_smallholder_id', 'entity_name', 'mpob_no', 'name', 'planted_area', 'certified_area',
  'gps_coordinate_lat', 'gps_coordinate_long', 'stateId', 'state', 'daerahId', 'daerah',
  'mukimId', 'mukim', 'lot_no', 'zoneId', 'zone', 'spoc_code', 'cert_no', 'cert_status',
  'track_id', 'record_status', 'deleted', 'created_at', 'updated_at',
];

const num = (f, lo, hi) => {
  const v = `TRY_CAST(trim(r.${f}) AS DOUBLE)`;
  return lo === undefined ? v : `CASE WHEN ${v} BETWEEN ${lo} AND ${hi} THEN ${v} END`;
};
const int = (f) => `TRY_CAST(trim(r.${f}) AS INTEGER)`;
const ts = (f) => `TRY_CAST(trim(r.${f}) AS TIMESTAMPTZ)`;

function copySQL(body, out) {
  const struct = fields.map((f) => `"${f}" VARCHAR`).join(', ');
  const maxObject = statSync(body).size + (1 << 20);
  return `
COPY (
  SELECT
    TRY_CAST(trim(r.entity_smallholder_id) AS BIGINT) AS entity_smallholder_id,
    r.entity_name, r.mpob_no, r.name,
    ${num('planted_area')} AS planted_area,
    ${num('certified_area')} AS certified_area,
    ${num('gps_coordinate_lat', -90, 90)} AS gps_coordinate_lat,
    ${num('gps_coordinate_long', -180, 180)} AS gps_coordinate_long,
    ${int('stateId')} AS state_id, r.state,
    ${int('daerahId')} AS daerah_id, r.daerah,
    ${int('mukimId')} AS mukim_id, r.mukim,
    r.lot_no,
    ${int('zoneId')} AS zone_id, r.zone,
    r.spoc_code, r.cert_no, r.cert_status, r.track_id, r.record_status,
    CASE lower(trim(r.deleted)) WHEN 'true' THEN true WHEN 'false' THEN false END AS deleted,
    ${ts('created_at')} AS created_at,
    ${ts('updated_at')} AS updated_at
  FROM (
    SELECT unnest(data.results) AS r
    FROM read_json(${quote(body)},
      columns = {data: 'STRUCT(results STRUCT(${struct})[])'},
      maximum_object_size = ${maxObject})
  )
  WHERE TRY_CAST(trim(r.entity_smallholder_id) AS BIGINT) IS NOT NULL
) TO ${quote(out)} (FORMAT parquet, COMPRESSION zstd)`;
}

const db = await DuckDBInstance.create(':memory:', { threads: '2' });
const con = await db.connect();
const one = async (sql) => (await con.runAndReadAll(sql)).getRows()[0][0];

switch (mode) {
  case 'copy':
    await con.run("SET TimeZone = 'UTC'");
    await con.run(copySQL(a, b));
    break;
  case 'rows':
    console.log(String(await one(`SELECT count(*) FROM read_parquet(${quote(a)})`)));
    break;
  case 'same': {
    const ra = `read_parquet(${quote(a)})`;
    const rb = `read_parquet(${quote(b)})`;
    const onlyA = await one(`SELECT count(*) FROM (SELECT * FROM ${ra} EXCEPT ALL SELECT * FROM ${rb})`);
    const onlyB = await one(`SELECT count(*) FROM (SELECT * FROM ${rb} EXCEPT ALL SELECT * FROM ${ra})`);
    const rows = await one(`SELECT count(*) FROM ${ra}`);
    console.log(`rows ${rows}; only in the first: ${onlyA}; only in the second: ${onlyB}`);
    process.exitCode = onlyA === 0n && onlyB === 0n ? 0 : 1;
    break;
  }
  default:
    console.error('usage: node duckdb.mjs copy BODY OUT | same A B | rows FILE');
    process.exitCode = 2;
}
