CREATE OR REPLACE FUNCTION sync.bulk_write_cadence_participants(p_columns text[], p_kind text, p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[], p_versions bigint[], p_deletes boolean[], p_uid uuid, OUT o_written integer, OUT o_ords integer[], OUT o_results jsonb[])
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
begin
    if p_columns is distinct from '{customer_id,cadence_id,status,next_due_on,last_touched_at,notes}'::text[] then
      raise exception using message = 'sync.bulk_write: the columns of public.cadence_participants are not those it was registered with; run sync.register_table again';
    end if;
    if p_kind = 'insert' then
      with w as (
        insert into public.cadence_participants as t (id, customer_id, cadence_id, status, next_due_on, last_touched_at, notes)
        select o.id, case when o.data ? 'customer_id' then r.customer_id else null end, case when o.data ? 'cadence_id' then r.cadence_id else null end, case when o.data ? 'status' then r.status else 'active'::text end, case when o.data ? 'next_due_on' then r.next_due_on else null end, case when o.data ? 'last_touched_at' then r.last_touched_at else null end, case when o.data ? 'notes' then r.notes else null end
          from unnest(p_ids, p_datas) o (id, data)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.cadence_participants, o.data) r
        returning t.id, t.customer_id, t.cadence_id, t.status, t.next_due_on, t.last_touched_at, t.notes, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    else
      with w as (
        update public.cadence_participants as t set deleted_at = case when o.is_delete then pg_catalog.now() else t.deleted_at end,
               version = coalesce(-o.base_version, t.version), customer_id = case when o.data ? 'customer_id' then r.customer_id else t.customer_id end, cadence_id = case when o.data ? 'cadence_id' then r.cadence_id else t.cadence_id end, status = case when o.data ? 'status' then r.status else t.status end, next_due_on = case when o.data ? 'next_due_on' then r.next_due_on else t.next_due_on end, last_touched_at = case when o.data ? 'last_touched_at' then r.last_touched_at else t.last_touched_at end, notes = case when o.data ? 'notes' then r.notes else t.notes end
          from unnest(p_ids, p_versions, p_datas, p_deletes) o (id, base_version, data, is_delete)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.cadence_participants, o.data) r
         where t.id = o.id and t.deleted_at is null
           and case when o.base_version is null then t.updated_by = p_uid
                    else t.version = o.base_version end
        returning t.id, t.customer_id, t.cadence_id, t.status, t.next_due_on, t.last_touched_at, t.notes, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    end if;
end
$function$
