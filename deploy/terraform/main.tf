data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  queue_name         = "${var.name}-events"
  dlq_name           = "${var.name}-events-dlq"
  incident_table     = "${var.name}-incidents"
  patterns_table     = "${var.name}-patterns"
  topic_name         = "${var.name}-notifications"
  log_group_name     = "/ecs/${var.name}-agent"
  container_name     = "agent"
  visibility_timeout = 120 # = AIOPS_VISIBILITY_TIMEOUT_SECONDS (set below): a step fits in it
  max_receive_count  = 5   # = aiops_agent.provision.bootstrap.MAX_RECEIVE_COUNT
}

# One customer managed key encrypts the queues, the tables, the topic, the log group and the
# image repository. The services that write into them on the agent's behalf may use it.
resource "aws_kms_key" "agent" {
  description             = "${var.name}: SQS, DynamoDB, SNS, CloudWatch Logs and ECR encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "agent" {
  name          = "alias/${var.name}-agent"
  target_key_id = aws_kms_key.agent.key_id
}

data "aws_iam_policy_document" "kms" {
  # A key policy's "Resource" can only be "*" (it means this key), and the account root must keep
  # kms:* on it or the key becomes unmanageable (AWS's default key policy). Hence:
  # checkov:skip=CKV_AWS_111:key policy: "*" is this key; root administers it (AWS default policy)
  # checkov:skip=CKV_AWS_109:key policy: "*" is this key; root administers it (AWS default policy)
  # checkov:skip=CKV_AWS_356:key policy: a key policy's resource is always "*" (this key)
  # The account administers the key; IAM policies (the task role's) grant its use.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # EventBridge sends into the encrypted queue; CloudWatch alarms publish to the encrypted topic.
  statement {
    sid       = "ServicesProduceEncryptedMessages"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsTheAgentLogGroup"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:DescribeKey",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group_name}"]
    }
  }
}
