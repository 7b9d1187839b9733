-- On a hot standby a pull cycle's upper snapshot is the standby's narrowed one (xmin:xmin:: every
-- xid below xmin visible, none above), widened to what the cursor's lower snapshot saw: a lower
-- snapshot taken on the primary lists its open transactions and may see commits above the standby's
-- xmin. Held here as an oracle over generated snapshot pairs, since the test server is a primary.
begin;
select plan(4);

select setseed(0.1802);
-- Lower snapshots as a primary takes them: xmin, xmax, and some xids in between still open.
create temp table lowers as
  select i, lo_min, lo_max,
         (lo_min || ':' || lo_max || ':' ||
          coalesce((select string_agg(x::text, ',' order by x)
                      from generate_series(lo_min, lo_max - 1) x
                     where x = lo_min or random() < 0.3), ''))::pg_snapshot as lower
    from (select i, lo_min, lo_min + (random() * 12)::int + 1 as lo_max
            from (select i, 10 + (random() * 30)::int as lo_min from generate_series(1, 200) i) a) b;
create temp table pairs as
  select l.i, l.lower, s as standby_xmin,
         sync.standby_upper_snapshot((s || ':' || s || ':')::pg_snapshot, l.lower) as upper
    from lowers l, lateral (select 5 + (random() * 45)::int as s) x;

select is(
  (select count(*)::int from pairs p, generate_series(1, 70) x
    where pg_visible_in_snapshot(x::text::xid8, p.upper)
          is distinct from (x < p.standby_xmin or pg_visible_in_snapshot(x::text::xid8, p.lower))),
  0,
  'the widened snapshot sees exactly what the standby''s sees and what the lower one saw, xid by xid, over 200 generated pairs'
);
select ok(
  (select count(*) from pairs where pg_snapshot_xmax(lower)::text::int > standby_xmin and upper::text <> (standby_xmin || ':' || standby_xmin || ':')) > 50,
  'fixture: most pairs have a lower snapshot that sees above the standby''s xmin, so the widening is exercised'
);
select is(sync.standby_upper_snapshot('40:40:', '10:30:12,25')::text, '40:40:',
          'a standby snapshot past the lower one is kept as it is');
select is(sync.standby_upper_snapshot('100:120:105,110', '90:130:95,125')::text, '100:120:105,110',
          'a snapshot that lists transactions in progress (a primary''s) is not narrowed, so it is kept as it is');

select * from finish();
rollback;
