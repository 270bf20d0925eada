# The two tables, with the key schemas of aiops_agent/store/tables.py (tests/unit/test_terraform.py
# compares them): incidents with its four GSIs, and patterns (baselines, watermarks, leases).
# Items expire through TTL on `expires_at` (epoch seconds), which the store writes.

resource "aws_dynamodb_table" "incidents" {
  name                        = local.incident_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "incident_id"
  deletion_protection_enabled = true

  attribute {
    name = "incident_id"
    type = "S"
  }
  attribute {
    name = "resource_type"
    type = "S"
  }
  attribute {
    name = "created_at"
    type = "S"
  }
  attribute {
    name = "resource_key"
    type = "S"
  }
  attribute {
    name = "workflow_state"
    type = "S"
  }
  attribute {
    name = "updated_at"
    type = "S"
  }
  attribute {
    name = "due_shard"
    type = "S"
  }
  attribute {
    name = "due_at"
    type = "S"
  }

  global_secondary_index {
    name            = "by-resource-type"
    hash_key        = "resource_type"
    range_key       = "created_at"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by-resource"
    hash_key        = "resource_key"
    range_key       = "created_at"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by-state"
    hash_key        = "workflow_state"
    range_key       = "updated_at"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by-due"
    hash_key        = "due_shard"
    range_key       = "due_at"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.agent.arn
  }
}

resource "aws_dynamodb_table" "patterns" {
  name                        = local.patterns_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.agent.arn
  }
}
