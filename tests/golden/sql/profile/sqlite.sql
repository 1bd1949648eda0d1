WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL OR "o"."created_at" <= '2026-06-30 23:59:59.999999'
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= '2026-06-30 23:59:59.999999'
)
SELECT
  "c"."id" AS "customer_id"
FROM "customers" AS "c"
WHERE
  NOT "c"."id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    (
      "c"."points" > 100
      AND CASE
        WHEN "c"."tags" IS NULL
        THEN NULL
        ELSE COALESCE(
          EXISTS(
            SELECT
              1
            FROM JSON_EACH("c"."tags")
            WHERE
              value = 'coat'
          ),
          0
        )
      END
      AND CAST(JULIANDAY('2026-06-30') - JULIANDAY(DATE("c"."registered_at")) AS INTEGER) < 30
    )
    OR (
      "c"."age" < 20 AND "c"."gender" = 'female'
    )
  )
