CREATE OR REPLACE FUNCTION sync.bulk_write_cadences(p_columns text[], p_kind text, p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[], p_versions bigint[], p_deletes boolean[], p_uid uuid, OUT o_written integer, OUT o_ords integer[], OUT o_results jsonb[])
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
begin
    if p_columns is distinct from '{branch_id,name,segment,activity_type,interval_days,active,notes}'::text[] then
      raise exception using message = 'sync.bulk_write: the columns of public.cadences are not those it was registered with; run sync.register_table again';
    end if;
    if p_kind = 'insert' then
      with w as (
        insert into public.cadences as t (id, branch_id, name, segment, activity_type, interval_days, active, notes)
        select o.id, case when o.data ? 'branch_id' then r.branch_id else sync.current_branch_id() end, case when o.data ? 'name' then r.name else null end, case when o.data ? 'segment' then r.segment else null end, case when o.data ? 'activity_type' then r.activity_type else null end, case when o.data ? 'interval_days' then r.interval_days else null end, case when o.data ? 'active' then r.active else true end, case when o.data ? 'notes' then r.notes else null end
          from unnest(p_ids, p_datas) o (id, data)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.cadences, o.data) r
        returning t.id, t.branch_id, t.name, t.segment, t.activity_type, t.interval_days, t.active, t.notes, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    else
      with w as (
        update public.cadences as t set deleted_at = case when o.is_delete then pg_catalog.now() else t.deleted_at end,
               version = coalesce(-o.base_version, t.version), branch_id = case when o.data ? 'branch_id' then r.branch_id else t.branch_id end, name = case when o.data ? 'name' then r.name else t.name end, segment = case when o.data ? 'segment' then r.segment else t.segment end, activity_type = case when o.data ? 'activity_type' then r.activity_type else t.activity_type end, interval_days = case when o.data ? 'interval_days' then r.interval_days else t.interval_days end, active = case when o.data ? 'active' then r.active else t.active end, notes = case when o.data ? 'notes' then r.notes else t.notes end
          from unnest(p_ids, p_versions, p_datas, p_deletes) o (id, base_version, data, is_delete)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.cadences, o.data) r
         where t.id = o.id and t.deleted_at is null
           and case when o.base_version is null then t.updated_by = p_uid
                    else t.version = o.base_version end
        returning t.id, t.branch_id, t.name, t.segment, t.activity_type, t.interval_days, t.active, t.notes, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    end if;
end
$function$
