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
), "o_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    COUNT(*) AS "a0",
    MAX("o"."created_at") AS "a1",
    SUM(CRM_MONEY("o"."total", 'orders.total')) AS "a2"
  FROM "vo" AS "o"
  GROUP BY
    "o"."customer_id"
), "others" AS (
  SELECT
    "customer_id" AS "customer_id"
  FROM (
    SELECT
      "customer_id"
    FROM "vo"
    UNION
    SELECT
      "customer_id"
    FROM "ve"
  ) AS "u"
), "ids" AS (
  SELECT
    "id" AS "customer_id"
  FROM "customers"
  UNION
  SELECT
    "customer_id"
  FROM "o_agg"
  UNION
  SELECT
    "customer_id"
  FROM "others"
), "pop0" AS (
  SELECT
    "ranked"."customer_id" AS "customer_id",
    CASE
      WHEN NOT "ranked"."v0" IS NULL
      THEN 1 + CAST(CAST((
        5 * (
          RANK() OVER (ORDER BY "ranked"."v0" NULLS LAST) - 1
        )
      ) AS REAL) / COUNT("ranked"."v0") OVER () AS INTEGER)
    END AS "t0"
  FROM (
    SELECT
      "o_agg"."customer_id" AS "customer_id",
      DATE("o_agg"."a1") AS "v0"
    FROM "o_agg"
    WHERE
      NOT "o_agg"."customer_id" IS NULL
      AND NOT "o_agg"."customer_id" IN (
        SELECT
          "c"."id"
        FROM "customers" AS "c"
        WHERE
          NOT (
            "c"."registered_at" IS NULL
            OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
          )
          AND NOT "c"."id" IS NULL
      )
      AND COALESCE("o_agg"."a0", 0) > 0
  ) AS "ranked"
), "pop1" AS (
  SELECT
    "ranked"."customer_id" AS "customer_id",
    NTILE(4) OVER (ORDER BY "ranked"."v0" NULLS LAST, "ranked"."customer_id" NULLS LAST) AS "t0"
  FROM (
    SELECT
      "ids"."customer_id" AS "customer_id",
      COALESCE("o_agg"."a2", 0) AS "v0"
    FROM "ids"
    LEFT JOIN "customers" AS "c"
      ON "c"."id" = "ids"."customer_id"
    LEFT JOIN "o_agg"
      ON "o_agg"."customer_id" = "ids"."customer_id"
    LEFT JOIN "others"
      ON "others"."customer_id" = "ids"."customer_id"
    WHERE
      NOT "ids"."customer_id" IS NULL
      AND (
        "c"."registered_at" IS NULL
        OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
      )
      AND "c"."age" >= 18
  ) AS "ranked"
), "pop2" AS (
  SELECT
    "ranked"."customer_id" AS "customer_id",
    CASE
      WHEN NOT "ranked"."v0" IS NULL
      THEN NTILE(3) OVER (
        PARTITION BY (
          "ranked"."v0" IS NULL
        )
        ORDER BY "ranked"."v0" DESC, "ranked"."customer_id" NULLS LAST
      )
    END AS "t0"
  FROM (
    SELECT
      "ids"."customer_id" AS "customer_id",
      "c"."points" AS "v0"
    FROM "ids"
    LEFT JOIN "customers" AS "c"
      ON "c"."id" = "ids"."customer_id"
    LEFT JOIN "o_agg"
      ON "o_agg"."customer_id" = "ids"."customer_id"
    LEFT JOIN "others"
      ON "others"."customer_id" = "ids"."customer_id"
    WHERE
      NOT "ids"."customer_id" IS NULL
      AND (
        "c"."registered_at" IS NULL
        OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
      )
      AND 1
  ) AS "ranked"
)
SELECT
  "ids"."customer_id" AS "customer_id"
FROM "ids"
LEFT JOIN "customers" AS "c"
  ON "c"."id" = "ids"."customer_id"
LEFT JOIN "o_agg"
  ON "o_agg"."customer_id" = "ids"."customer_id"
LEFT JOIN "others"
  ON "others"."customer_id" = "ids"."customer_id"
LEFT JOIN "pop0"
  ON "pop0"."customer_id" = "ids"."customer_id"
LEFT JOIN "pop1"
  ON "pop1"."customer_id" = "ids"."customer_id"
LEFT JOIN "pop2"
  ON "pop2"."customer_id" = "ids"."customer_id"
WHERE
  NOT "ids"."customer_id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    "pop0"."t0" >= 4 AND "pop1"."t0" = 1 AND "pop2"."t0" <= 2
  )
