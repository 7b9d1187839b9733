CREATE OR REPLACE FUNCTION sync.bulk_write_pipeline_referrals(p_columns text[], p_kind text, p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[], p_versions bigint[], p_deletes boolean[], p_uid uuid, OUT o_written integer, OUT o_ords integer[], OUT o_results jsonb[])
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
begin
    if p_columns is distinct from '{pipeline_id,referred_rm_id,status,notes,customer_name,customer_type,customer_city,pipeline_title,pipeline_stage}'::text[] then
      raise exception using message = 'sync.bulk_write: the columns of public.pipeline_referrals are not those it was registered with; run sync.register_table again';
    end if;
    if p_kind = 'insert' then
      with w as (
        insert into public.pipeline_referrals as t (id, pipeline_id, referred_rm_id, status, notes, customer_name, customer_type, customer_city, pipeline_title, pipeline_stage)
        select o.id, case when o.data ? 'pipeline_id' then r.pipeline_id else null end, case when o.data ? 'referred_rm_id' then r.referred_rm_id else null end, case when o.data ? 'status' then r.status else 'open'::text end, case when o.data ? 'notes' then r.notes else null end, case when o.data ? 'customer_name' then r.customer_name else null end, case when o.data ? 'customer_type' then r.customer_type else null end, case when o.data ? 'customer_city' then r.customer_city else null end, case when o.data ? 'pipeline_title' then r.pipeline_title else null end, case when o.data ? 'pipeline_stage' then r.pipeline_stage else null end
          from unnest(p_ids, p_datas) o (id, data)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.pipeline_referrals, o.data) r
        returning t.id, t.pipeline_id, t.referred_rm_id, t.status, t.notes, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at, t.customer_name, t.customer_type, t.customer_city, t.pipeline_title, t.pipeline_stage)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    else
      with w as (
        update public.pipeline_referrals as t set deleted_at = case when o.is_delete then pg_catalog.now() else t.deleted_at end,
               version = coalesce(-o.base_version, t.version), pipeline_id = case when o.data ? 'pipeline_id' then r.pipeline_id else t.pipeline_id end, referred_rm_id = case when o.data ? 'referred_rm_id' then r.referred_rm_id else t.referred_rm_id end, status = case when o.data ? 'status' then r.status else t.status end, notes = case when o.data ? 'notes' then r.notes else t.notes end, customer_name = case when o.data ? 'customer_name' then r.customer_name else t.customer_name end, customer_type = case when o.data ? 'customer_type' then r.customer_type else t.customer_type end, customer_city = case when o.data ? 'customer_city' then r.customer_city else t.customer_city end, pipeline_title = case when o.data ? 'pipeline_title' then r.pipeline_title else t.pipeline_title end, pipeline_stage = case when o.data ? 'pipeline_stage' then r.pipeline_stage else t.pipeline_stage end
          from unnest(p_ids, p_versions, p_datas, p_deletes) o (id, base_version, data, is_delete)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.pipeline_referrals, o.data) r
         where t.id = o.id and t.deleted_at is null
           and case when o.base_version is null then t.updated_by = p_uid
                    else t.version = o.base_version end
        returning t.id, t.pipeline_id, t.referred_rm_id, t.status, t.notes, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at, t.customer_name, t.customer_type, t.customer_city, t.pipeline_title, t.pipeline_stage)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    end if;
end
$function$
